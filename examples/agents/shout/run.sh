#!/usr/bin/env bash
# A Swarm process agent: bash run.sh <input.json> <output.json>
set -euo pipefail
input="$1"
output="$2"
echo "shouting for run ${SWARM_RUN_ID}, attempt ${SWARM_ATTEMPT}" >&2
python3 -c '
import json, sys
data = json.load(open(sys.argv[1]))
json.dump({"shouted": data["text"].upper() + "!"}, open(sys.argv[2], "w"))
' "$input" "$output"
