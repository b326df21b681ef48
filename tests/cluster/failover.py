#!/usr/bin/env python3
"""Failover time of a stepline cluster: from a node's kill -9 until its
executions make progress on the other nodes.

Starts three `stepline serve` nodes on one PostgreSQL schema, starts
executions through the first node (so that it owns them; each loops on a
one-second Wait), kills that node with SIGKILL, and times, through
another node, how long each execution takes to record a new history event.

    tests/cluster/failover.py --binary target/release/stepline \
        --store postgres://stepline@127.0.0.1:55432/stepline \
        --executions 200 --lease-seconds 5

Prints the lease, then the failover time's median, p90 and maximum. The
target is at most the lease time plus two seconds.
"""

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

LOOP = json.dumps({
    "StartAt": "Nap",
    "States": {
        "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Count"},
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More?"},
        "More?": {"Type": "Choice",
                  "Choices": [{"Variable": "$.n", "NumericLessThan": 100000, "Next": "Nap"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"},
    },
})


def call(addr, action, body):
    request = urllib.request.Request(
        f"http://{addr}/", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": f"AWSStepFunctions.{action}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def start_node(binary, config, workdir, i):
    node = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir",
         os.path.join(workdir, f"unused-{i}"), "--config", config,
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = node.stdout.readline()
    # "stepline listening on http://127.0.0.1:PORT (...)"
    addr = line.split("://", 1)[1].split()[0]
    return node, addr


def history_length(addr, arn):
    events = call(addr, "GetExecutionHistory",
                  {"executionArn": arn, "maxResults": 1000, "reverseOrder": True})
    return events["events"][0]["id"] if events["events"] else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/stepline")
    parser.add_argument("--store", required=True, help="a PostgreSQL URL")
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--lease-seconds", type=int, default=5)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="stepline-failover-")
    schema = f"failover_{os.getpid()}_{int(time.time())}"
    config = os.path.join(workdir, "stepline.toml")
    with open(config, "w") as f:
        f.write(f'[store]\nurl = "{args.store}"\nschema = "{schema}"\n'
                f"lease_seconds = {args.lease_seconds}\n")
    nodes = [start_node(args.binary, config, workdir, i) for i in range(3)]
    try:
        victim, survivor = nodes[0][1], nodes[1][1]
        machine = call(victim, "CreateStateMachine", {
            "name": "loop", "definition": LOOP,
            "roleArn": "arn:aws:iam::111111111111:role/r"})["stateMachineArn"]
        arns = [call(victim, "StartExecution", {
            "stateMachineArn": machine, "name": f"loop-{i}",
            "input": json.dumps({"n": 0})})["executionArn"]
            for i in range(args.executions)]
        time.sleep(3)
        nodes[0][0].send_signal(signal.SIGKILL)
        nodes[0][0].wait()
        killed = time.monotonic()
        # Read in parallel, so that a pass over many executions is short
        # beside the times it measures.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        lengths = lambda arns: dict(zip(arns, pool.map(lambda a: history_length(survivor, a), arns)))
        last = lengths(arns)
        waiting = set(arns)
        took = {}
        while waiting and time.monotonic() - killed < 120:
            pending = sorted(waiting)
            for arn, now in lengths(pending).items():
                if now > last[arn]:
                    took[arn] = time.monotonic() - killed
                    waiting.discard(arn)
            time.sleep(0.05)
        if waiting:
            print(f"{len(waiting)} executions made no progress in 120 s", file=sys.stderr)
            return 1
        times = sorted(took.values())
        pick = lambda p: times[min(len(times) - 1, int(round((len(times) - 1) * p)))]
        print(f"lease {args.lease_seconds} s, {len(times)} executions taken over: "
              f"failover median {pick(0.5):.2f} s, p90 {pick(0.9):.2f} s, max {times[-1]:.2f} s")
        return 0
    finally:
        for node, _ in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
                node.wait()


if __name__ == "__main__":
    sys.exit(main())
