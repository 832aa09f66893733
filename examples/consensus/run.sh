#!/usr/bin/env bash
# One command: two reference executors, a consensus task against them, its decision and cost.
#   bash examples/consensus/run.sh            (from the repository, after npm install)
#   KEEP=1 bash examples/consensus/run.sh     keeps the temporary project to look at afterwards
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
swarm="node $(cd "$here/../.." && pwd)/bin/swarm"
work="$(mktemp -d)"
cd "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "project kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

$swarm agent register "$here/agents/stats-careful" >/dev/null
$swarm agent register "$here/agents/stats-hasty" >/dev/null

port_a="${PORT_A:-8787}"
port_b="${PORT_B:-8788}"
$swarm executor serve --port "$port_a" --agent stats-careful --state-dir .swarm/careful --name careful >careful.log 2>&1 &
pids+=($!)
$swarm executor serve --port "$port_b" --agent stats-hasty --state-dir .swarm/hasty --name hasty >hasty.log 2>&1 &
pids+=($!)
for port in "$port_a" "$port_b"; do
  for _ in $(seq 1 100); do
    if node -e "fetch('http://127.0.0.1:$port/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; then break; fi
    sleep 0.1
  done
done

$swarm executors add careful "http://127.0.0.1:$port_a"
$swarm executors add hasty "http://127.0.0.1:$port_b"

# Submit the task and wait for its decision (a worker runs inside this command).
task="$($swarm task submit "$here/task.yaml" --wait --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).task_id))')"
echo
$swarm task decision "$task"
echo
$swarm task cost "$task"
