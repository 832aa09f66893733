import { Empty } from '../components/Empty';

export function Operations() {
  return (
    <>
      <div className="page-head">
        <h1>Operations</h1>
      </div>
      <Empty title="Coming soon" />
    </>
  );
}
