#!/usr/bin/env bash
# A Swarm agent. Swarm runs: bash run.sh <input.json> <output.json>
set -euo pipefail
input="$1"
output="$2"
# Anything on stderr or stdout is kept in the step's log (swarm runs logs <run> <step>).
echo "attempt ${SWARM_ATTEMPT} of ${SWARM_IDEMPOTENCY_KEY}" >&2
size=$(wc -c < "$input")
printf '{"result": "input was %s bytes"}' "$size" > "$output"
