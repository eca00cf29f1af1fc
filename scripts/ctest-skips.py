#!/usr/bin/env python3
"""Lists the tests of the last ctest run that GoogleTest skipped, each with the reason it gave.

ctest reports a skipped GoogleTest case as "Skipped" (gtest_discover_tests matches "[  SKIPPED ]"), but not
why; the reason is the line after "<file>:<line>: Skipped" in the test's output, kept in LastTest.log.
Usage: ctest-skips.py BUILD_DIR
"""
import pathlib
import re
import sys


def skips(log_text):
    for block in log_text.split("\n----------------------------------------------------------\n"):
        name = re.search(r"^\d+/\d+ Test: (.+)$", block, re.M)
        if name:
            current = name.group(1)
        reason = re.search(r": Skipped\n(.*)\n", block)
        if reason and "[  SKIPPED ]" in block:
            yield current, reason.group(1).strip() or "(no reason given)"


def main():
    log = pathlib.Path(sys.argv[1]) / "Testing" / "Temporary" / "LastTest.log"
    found = list(skips(log.read_text(errors="replace")))
    print(f"skipped tests: {len(found)}")
    for name, reason in found:
        print(f"  {name}: {reason}")


if __name__ == "__main__":
    main()
