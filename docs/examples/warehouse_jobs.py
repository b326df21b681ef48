"""The jobs of docs/orchestration.md's worked pipelines, registered as
processes (JSON on stdin, JSON on stdout, files reported for lineage):

  crawl           catalogs the CSV and JSON files of the folder a file is in
                  (AWS Glue's crawler: each table's name, columns and rows)
  etl CURATED     turns a landed CSV file into CURATED/NAME.json, with its
                  amounts read as numbers (a Glue ETL job)
  extract DATA    reads DATA/DATE/TABLE.csv for a nightly run
  load WAREHOUSE  writes the day's summary to WAREHOUSE/DATE.json

The folders come from the operator's stepline.toml (the process's args),
never from the task input, so a definition cannot make a job read or write
elsewhere. Each file is read up to 1 MiB."""

import csv
import json
import os
import sys

MAX_BYTES = 1 << 20


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read(MAX_BYTES + 1)
    if len(text) > MAX_BYTES:
        sys.exit(f"{path} is larger than 1 MiB")
    return list(csv.DictReader(text.splitlines()))


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    aside = path + ".part"
    with open(aside, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(aside, path)


def crawl(task):
    folder = os.path.dirname(task["path"])
    tables = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".csv"):
            rows = read_csv(path)
            columns = list(rows[0].keys()) if rows else []
        elif name.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                rows = json.load(f)["rows"]
            columns = sorted({key for row in rows for key in row})
        else:
            continue
        tables.append({"table": name.rsplit(".", 1)[0], "columns": columns, "rows": len(rows)})
    return {"folder": folder, "tables": tables}


def etl(task, curated):
    source = task["path"]
    rows = [dict(row, amount=float(row["amount"])) for row in read_csv(source)]
    name = os.path.basename(source).rsplit(".", 1)[0]
    target = os.path.join(curated, name + ".json")
    write_json(target, {"rows": rows})
    return {"path": target, "rows": len(rows), "stepline:inputs": [source], "stepline:outputs": [target]}


def extract(task, data):
    date, table = task["date"], task["table"]
    if not (len(date) == 10 and date.replace("-", "").isdigit() and table.isidentifier()):
        sys.exit(f"not a date and a table: {date!r} {table!r}")
    path = os.path.join(data, date, table + ".csv")
    return {"table": table, "rows": read_csv(path), "stepline:inputs": [path]}


def load(task, warehouse):
    date = task["date"]
    if not (len(date) == 10 and date.replace("-", "").isdigit()):
        sys.exit(f"not a date: {date!r}")
    target = os.path.join(warehouse, date + ".json")
    write_json(target, task["summary"])
    return {"path": target, "stepline:outputs": [target]}


def main():
    job, folders = sys.argv[1], sys.argv[2:]
    task = json.load(sys.stdin)
    if job == "crawl":
        result = crawl(task)
    elif job == "etl":
        result = etl(task, folders[0])
    elif job == "extract":
        result = extract(task, folders[0])
    elif job == "load":
        result = load(task, folders[0])
    else:
        sys.exit(f"no job {job!r}")
    json.dump(result, sys.stdout)


main()
