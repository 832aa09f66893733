# A Swarm agent. Swarm runs: python3 main.py <input.json> <output.json>
import json
import os
import sys

input_file, output_file = sys.argv[1], sys.argv[2]
with open(input_file) as f:
    data = json.load(f)

result = {"received": data["input_data"], "key": os.environ["SWARM_IDEMPOTENCY_KEY"]}

with open(output_file, "w") as f:
    json.dump({"result": result}, f)
