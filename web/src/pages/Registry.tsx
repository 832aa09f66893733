import { Empty } from '../components/Empty';

export function Registry() {
  return (
    <>
      <div className="page-head">
        <h1>Registry</h1>
      </div>
      <Empty title="Coming soon" />
    </>
  );
}
