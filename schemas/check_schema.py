#!/usr/bin/env python3
"""Check schemas/asl.schema.json.

1. The schema is a valid JSON Schema draft 2020-12 document.
2. Every `definition` in the conformance cases (recorded against real AWS, so
   all were accepted by AWS) is valid.
3. A set of small invalid definitions is rejected, and every error points at
   the offending location (instance path).
4. Every definition in state-machines/*.json is valid.

If the `jsonschema_rs` module (Python binding of the Rust `jsonschema` crate
that the engine uses) is importable, steps 2-4 are repeated with it.

Usage:
    pip install jsonschema            # once
    python3 schemas/check_schema.py [--cases DIR] [--state-machines DIR] [-v]

Exit status 0 when everything passes, 1 otherwise.
"""

import argparse
import glob
import json
import os
import sys

from jsonschema import Draft202012Validator

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.join(HERE, "asl.schema.json")
DEFAULT_CASES = "/work/shared/conformance/cases"
DEFAULT_STATE_MACHINES = os.path.join(os.path.dirname(HERE), "state-machines")


def sm(states, **top):
    """A definition with StartAt pointing at the first state."""
    d = {"StartAt": next(iter(states)), "States": states}
    d.update(top)
    return d


PASS_END = {"Type": "Pass", "End": True}

# (name, definition, expected instance path of every error, substring expected in some message)
INVALID = [
    ("unknown top-level field",
     sm({"A": PASS_END}, Foo=1), [], "Foo"),
    ("unknown field in a Pass state",
     sm({"A": {"Type": "Pass", "End": True, "Resource": "x"}}), ["States", "A"], "Resource"),
    ("Type missing",
     sm({"A": {"End": True}}), ["States", "A"], "Type"),
    ("Type Foo",
     sm({"A": {"Type": "Foo", "End": True}}), ["States", "A", "Type"], "Foo"),
    ("Task without Resource",
     sm({"A": {"Type": "Task", "End": True}}), ["States", "A"], "Resource"),
    ("BackoffRate 0.5",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5}]}}),
     ["States", "A", "Retry", 0, "BackoffRate"], "0.5"),
    ("MaxAttempts -1",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": -1}]}}),
     ["States", "A", "Retry", 0, "MaxAttempts"], "-1"),
    ("ErrorEquals empty",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": []}]}}),
     ["States", "A", "Retry", 0, "ErrorEquals"], "[]"),
    ("Catch without Next",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Catch": [{"ErrorEquals": ["States.ALL"]}]}}),
     ["States", "A", "Catch", 0], "Next"),
    ("Choices empty",
     sm({"A": {"Type": "Choice", "Choices": [], "Default": "B"}, "B": PASS_END}),
     ["States", "A", "Choices"], "[]"),
    ("Branches empty",
     sm({"A": {"Type": "Parallel", "Branches": [], "End": True}}),
     ["States", "A", "Branches"], "[]"),
    ("TimeoutSeconds 'ten'",
     sm({"A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": "ten", "End": True}}),
     ["States", "A", "TimeoutSeconds"], "ten"),
    ("JitterStrategy SOME",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL"], "JitterStrategy": "SOME"}]}}),
     ["States", "A", "Retry", 0, "JitterStrategy"], "SOME"),
    ("StartAt missing",
     {"States": {"A": PASS_END}}, [], "StartAt"),
    ("States not an object",
     {"StartAt": "A", "States": [PASS_END]}, ["States"], "object"),
    ("unknown field in a state inside a Map ItemProcessor",
     sm({"M": {"Type": "Map", "End": True,
               "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, "Foo": 1}}}}}),
     ["States", "M", "ItemProcessor", "States", "P"], "Foo"),
    ("ProcessorConfig Mode PARALLEL",
     sm({"M": {"Type": "Map", "End": True,
               "ItemProcessor": {"ProcessorConfig": {"Mode": "PARALLEL"}, "StartAt": "P", "States": {"P": PASS_END}}}}),
     ["States", "M", "ItemProcessor", "ProcessorConfig", "Mode"], "PARALLEL"),
    ("ProcessorConfig in a Parallel branch",
     sm({"A": {"Type": "Parallel", "End": True,
               "Branches": [{"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P", "States": {"P": PASS_END}}]}}),
     ["States", "A", "Branches", 0], "ProcessorConfig"),
    ("NumericEquals with a string",
     sm({"A": {"Type": "Choice", "Default": "B",
               "Choices": [{"Variable": "$.x", "NumericEquals": "5", "Next": "B"}]}, "B": PASS_END}),
     ["States", "A", "Choices", 0, "NumericEquals"], "5"),
    ("Next inside a nested choice rule",
     sm({"A": {"Type": "Choice", "Default": "B",
               "Choices": [{"Not": {"Variable": "$.x", "IsNull": True, "Next": "B"}, "Next": "B"}]}, "B": PASS_END}),
     ["States", "A", "Choices", 0, "Not"], "Next"),
    ("MaxDelaySeconds 31622401",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL"], "MaxDelaySeconds": 31622401}]}}),
     ["States", "A", "Retry", 0, "MaxDelaySeconds"], "31622401"),
    ("IntervalSeconds 0",
     sm({"A": {"Type": "Task", "Resource": "r", "End": True,
               "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0}]}}),
     ["States", "A", "Retry", 0, "IntervalSeconds"], "0"),
    ("ToleratedFailurePercentage 101",
     sm({"M": {"Type": "Map", "End": True, "ToleratedFailurePercentage": 101,
               "ItemProcessor": {"StartAt": "P", "States": {"P": PASS_END}}}}),
     ["States", "M", "ToleratedFailurePercentage"], "101"),
    ("ReaderConfig InputType XML",
     sm({"M": {"Type": "Map", "End": True,
               "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "XML"}},
               "ItemProcessor": {"StartAt": "P", "States": {"P": PASS_END}}}}),
     ["States", "M", "ItemReader", "ReaderConfig", "InputType"], "XML"),
    ("top-level QueryLanguage JMESPath",
     sm({"A": PASS_END}, QueryLanguage="JMESPath"), ["QueryLanguage"], "JMESPath"),
    ("Wait Seconds -1",
     sm({"A": {"Type": "Wait", "Seconds": -1, "End": True}}), ["States", "A", "Seconds"], "-1"),
    ("HeartbeatSeconds 1.5",
     sm({"A": {"Type": "Task", "Resource": "r", "HeartbeatSeconds": 1.5, "End": True}}),
     ["States", "A", "HeartbeatSeconds"], "1.5"),
    ("Condition that is not a JSONata expression",
     sm({"A": {"Type": "Choice", "Default": "B", "QueryLanguage": "JSONata",
               "Choices": [{"Condition": "$states.input.x", "Next": "B"}]}, "B": PASS_END}),
     ["States", "A", "Choices", 0, "Condition"], "$states.input.x"),
    ("top-level TimeoutSeconds negative",
     sm({"A": PASS_END}, TimeoutSeconds=-5), ["TimeoutSeconds"], "-5"),
    ("Next on a Succeed state",
     sm({"A": {"Type": "Succeed", "Next": "A"}}), ["States", "A"], "Next"),
]

# Definitions that must stay valid (things a careless tightening could break).
VALID = [
    ("JSONata numbers as expressions",
     sm({"W": {"Type": "Wait", "Seconds": "{% $states.input.n %}", "Next": "T"},
         "T": {"Type": "Task", "Resource": "r", "TimeoutSeconds": "{% 10 %}", "HeartbeatSeconds": "{%\n5\n%}",
               "Arguments": "{% $states.input %}", "Output": [1, "{% 2 %}"], "End": True}},
        QueryLanguage="JSONata")),
    ("Pass and Catch with null paths",
     sm({"A": {"Type": "Task", "Resource": "r", "InputPath": None, "OutputPath": None, "ResultPath": None,
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B", "ResultPath": None}], "Next": "B"},
         "B": {"Type": "Pass", "Result": "anything", "End": True}})),
    ("distributed Map with every sub-object",
     sm({"M": {"Type": "Map", "End": True, "Label": "l", "MaxConcurrency": 0, "ToleratedFailureCount": 0,
               "ToleratedFailurePercentage": 12.5,
               "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"},
                              "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a"],
                                               "CSVDelimiter": "TAB", "MaxItems": 10}},
               "ItemBatcher": {"MaxItemsPerBatch": 5, "MaxInputBytesPerBatch": 1024, "BatchInput": {"k": 1}},
               "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "p"},
                                "WriterConfig": {"OutputType": "JSONL", "Transformation": "FLATTEN"}},
               "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                                 "StartAt": "P", "States": {"P": PASS_END}}}})),
    ("Choice with And/Or/Not and Assign",
     sm({"C": {"Type": "Choice", "Default": "B", "Assign": {"x": 1},
               "Choices": [{"And": [{"Variable": "$.a", "IsPresent": True},
                                    {"Or": [{"Variable": "$.a", "StringMatches": "x*"},
                                            {"Not": {"Variable": "$.a", "NumericGreaterThanPath": "$.b"}}]}],
                            "Next": "B", "Assign": {"y.$": "$.a"}, "Comment": "c"}]},
         "B": {"Type": "Succeed"}})),
    ("Fail with paths",
     sm({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('{}', $.c)"}})),
]


def fmt_path(path):
    return "$" + "".join("[%d]" % p if isinstance(p, int) else "." + str(p) for p in path)


def load_definitions(cases_dir, sm_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(cases_dir, "*.json"))):
        with open(path) as f:
            out.append((path, json.load(f)["definition"]))
    n_cases = len(out)
    for path in sorted(glob.glob(os.path.join(sm_dir, "*.json"))):
        with open(path) as f:
            out.append((path, json.load(f)))
    return out, n_cases, len(out) - n_cases


class PyEngine:
    name = "python-jsonschema"

    def __init__(self, schema):
        self.v = Draft202012Validator(schema)

    def errors(self, instance):
        return [(list(e.absolute_path), e.message) for e in self.v.iter_errors(instance)]


class RustEngine:
    name = "jsonschema_rs (Rust crate)"

    def __init__(self, schema, module):
        self.v = module.Draft202012Validator(schema)

    def errors(self, instance):
        return [(list(e.instance_path), e.message) for e in self.v.iter_errors(instance)]


def run(engine, definitions, verbose):
    failures = 0
    print("== %s" % engine.name)

    bad = 0
    for path, definition in definitions:
        errs = engine.errors(definition)
        if errs:
            bad += 1
            print("  INVALID (should be valid): %s" % path)
            for p, msg in errs:
                print("      at %s: %s" % (fmt_path(p), msg[:300]))
    print("  valid definitions: %d/%d accepted" % (len(definitions) - bad, len(definitions)))
    failures += bad

    bad = 0
    for name, definition in VALID:
        errs = engine.errors(definition)
        if errs:
            bad += 1
            print("  REJECTED (should be valid): %s" % name)
            for p, msg in errs:
                print("      at %s: %s" % (fmt_path(p), msg[:300]))
    print("  inline valid definitions: %d/%d accepted" % (len(VALID) - bad, len(VALID)))
    failures += bad

    bad = 0
    for name, definition, want_path, want_text in INVALID:
        errs = engine.errors(definition)
        problems = []
        if not errs:
            problems.append("accepted")
        for p, msg in errs:
            if p != want_path:
                problems.append("error at %s, expected at %s" % (fmt_path(p), fmt_path(want_path)))
        if errs and not any(want_text in msg for _, msg in errs):
            problems.append("no message mentions %r" % want_text)
        if problems:
            bad += 1
            print("  FAIL %s: %s" % (name, "; ".join(problems)))
        if problems or verbose:
            for p, msg in errs:
                print("      %-28s at %s: %s" % (name[:28], fmt_path(p), msg[:200]))
    print("  inline invalid definitions: %d/%d rejected at the right place" % (len(INVALID) - bad, len(INVALID)))
    failures += bad
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help="conformance cases directory (default %(default)s)")
    ap.add_argument("--state-machines", default=DEFAULT_STATE_MACHINES, help="example definitions directory (default %(default)s)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the errors of every invalid definition")
    args = ap.parse_args()

    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    print("schema %s is a valid draft 2020-12 schema" % SCHEMA_PATH)

    definitions, n_cases, n_sm = load_definitions(args.cases, args.state_machines)
    print("%d conformance definitions from %s, %d from %s" % (n_cases, args.cases, n_sm, args.state_machines))
    if n_cases == 0:
        print("warning: no conformance cases found")

    engines = [PyEngine(schema)]
    try:
        import jsonschema_rs
    except ImportError:
        print("(jsonschema_rs not importable: skipping the Rust-crate cross-check)")
    else:
        engines.append(RustEngine(schema, jsonschema_rs))

    failures = sum(run(e, definitions, args.verbose) for e in engines)
    print("OK" if failures == 0 else "FAILED: %d problem(s)" % failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
