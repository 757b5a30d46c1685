#!/usr/bin/env python3
"""Count every Criterion test in a meson test log (TAP on stdout).

    summary.py TESTLOG.json [--reports DIR]

A test executable that failed without reporting a failing test (a crash,
a timeout) counts as one failure, so nothing is hidden.  With --reports,
every file in DIR (sanitizer reports, written there through log_path by
any process the tests started: heidid, heidi-shepherd, heidictl, a test
worker) counts as one more failure and its head is printed, since a daemon
that dies of a report does not always fail a test.  Prints the failing
tests, then a last line "N passed, N failed".
"""
import json
import os
import re
import sys

args = sys.argv[1:]
reports = None
if "--reports" in args:
    i = args.index("--reports")
    reports = args[i + 1]
    del args[i:i + 2]

passed = failed = skipped = 0
failures = []
with open(args[0]) as f:
    for line in f:
        t = json.loads(line)
        out = t.get("stdout") or ""
        n_fail_here = 0
        for l in out.splitlines():
            if l.startswith("ok "):
                if re.search(r"#\s*SKIP", l, re.I):
                    skipped += 1
                else:
                    passed += 1
            elif l.startswith("not ok "):
                failed += 1
                n_fail_here += 1
                failures.append(l)
        if t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and n_fail_here == 0:
            failed += 1
            failures.append("%s: %s (no test reported the failure)" % (t.get("name"), t.get("result")))
if reports is not None and os.path.isdir(reports):
    for name in sorted(os.listdir(reports)):
        path = os.path.join(reports, name)
        with open(path, errors="replace") as f:
            text = f.read()
        if not text.strip():
            continue
        failed += 1
        failures.append("sanitizer report %s" % path)
        print("==== %s" % path)
        print("\n".join(text.splitlines()[:60]))
for l in failures:
    print("FAILED:", l)
if skipped:
    print("%d skipped (each names its reason in the log)" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
