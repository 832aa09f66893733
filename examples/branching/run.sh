#!/usr/bin/env bash
# One command: run a workflow, fork it at its middle step with a replaced output, export both runs
# as signed bundles, verify them offline (the fork against its parent), then hand the parent to a
# second installation encrypted, import it there and fork it again.
#   bash examples/branching/run.sh            (from the repository, after npm install and a build)
#   KEEP=1 bash examples/branching/run.sh     keeps the temporary projects to look at afterwards
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
swarm="node $root/bin/swarm.js"
work="$(mktemp -d)"
cleanup() {
  if [ -n "${KEEP:-}" ]; then echo "projects kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v[k];console.log(typeof v==="string"?v:JSON.stringify(v))})' "$1"; }

# --- installation A: run, fork, export, verify ---
mkdir -p "$work/a" && cd "$work/a" && echo "name: branching-a" > swarm.yaml
$swarm agent register "$root/examples/agents/echo" >/dev/null
$swarm workflow register "$here/workflows/pipeline" >/dev/null
parent="$($swarm run pipeline '{"topic": "tide pools"}' --json | field run_id)"
echo "run    $parent"
# Fork at the middle step: the draft is copied with a replaced output, review and publish run again.
fork="$($swarm runs fork "$parent" --at review --replace-output 'draft={"echoed": "a better draft about tide pools"}' --wait --json | field run_id)"
echo "fork   $fork (at review, draft replaced)"

$swarm runs export "$parent" -o "$work/parent.tar" >/dev/null
$swarm runs export "$fork" -o "$work/fork.tar" >/dev/null
signer="$($swarm keys export-public runs)"
echo
echo "# offline verification (no store): the parent, then the fork against its parent"
(cd "$work" && $swarm verify parent.tar --public-key "$signer")
(cd "$work" && $swarm verify fork.tar --public-key "$signer" --parent parent.tar)

# --- installation B: receives the parent encrypted to its own age key, imports it, forks it ---
mkdir -p "$work/b" && cd "$work/b" && echo "name: branching-b" > swarm.yaml
$swarm agent register "$root/examples/agents/echo" >/dev/null
recipient="$($swarm keys create inbox --type age --json | field public_key)"
(cd "$work/a" && $swarm runs export "$parent" -o "$work/parent.tar.age" --encrypt-to "$recipient" >/dev/null)
echo
echo "# installation B: import the encrypted bundle (verified first), fork it there"
$swarm runs import "$work/parent.tar.age" --identity inbox --public-key "$signer"
fork_b="$($swarm runs fork "$parent" --at publish --wait --json | field run_id)"
$swarm runs export "$fork_b" -o "$work/fork-b.tar" >/dev/null
(cd "$work" && $swarm verify fork-b.tar --parent parent.tar --json | field parent.checked | sed 's/^/fork made in B checks against the parent made in A: /')

echo
echo "# result"
echo "parent publish: $($swarm runs show "$parent" --json | field steps.2.outputs.echoed)"
(cd "$work/a" && echo "fork   publish: $($swarm runs show "$fork" --json | field steps.2.outputs.echoed)")
