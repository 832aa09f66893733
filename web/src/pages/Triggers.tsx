import { Empty } from '../components/Empty';

export function Triggers() {
  return (
    <>
      <div className="page-head">
        <h1>Triggers</h1>
      </div>
      <Empty title="Coming soon" />
    </>
  );
}
