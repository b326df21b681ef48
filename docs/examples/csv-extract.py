"""Extract step of state-machines/csv-etl.asl.json, registered as the
process "csv-extract" (see docs/triggers.md). Reads the task input (JSON on
stdin) naming a CSV file, answers with its header and rows as JSON on
stdout. Bounded: at most 10,000 rows and 1 MiB are read."""

import csv
import json
import sys

MAX_ROWS = 10_000
MAX_BYTES = 1 << 20

task = json.load(sys.stdin)
with open(task["path"], newline="", encoding="utf-8") as f:
    text = f.read(MAX_BYTES + 1)
if len(text) > MAX_BYTES:
    print("the file is larger than 1 MiB", file=sys.stderr)
    sys.exit(3)
reader = csv.DictReader(text.splitlines())
rows = []
for row in reader:
    if len(rows) == MAX_ROWS:
        break
    rows.append(row)
json.dump({"columns": reader.fieldnames or [], "rows": rows}, sys.stdout)
