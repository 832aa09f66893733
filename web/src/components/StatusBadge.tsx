/** A run's or a step's state as a colored badge (the same colors as the DAG's nodes). */
export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge s-${status}`} data-status={status}>
      {status}
    </span>
  );
}
