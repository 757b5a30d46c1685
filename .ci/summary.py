#!/usr/bin/env python3
"""Count every Criterion test in a meson test log (TAP on stdout).

A test executable that failed without reporting a failing test (a crash,
a timeout) counts as one failure, so nothing is hidden.  Prints the
failing tests, then a last line "N passed, N failed".
"""
import json
import re
import sys

passed = failed = skipped = 0
failures = []
with open(sys.argv[1]) as f:
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
for l in failures:
    print("FAILED:", l)
if skipped:
    print("%d skipped (each names its reason in the log)" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
