import { Link } from 'react-router';
import { Empty } from '../components/Empty';

export function NotFound() {
  return (
    <Empty title="No such page">
      <Link to="/runs">Go to the runs</Link>
    </Empty>
  );
}
