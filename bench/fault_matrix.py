"""The fault matrix: run ``tests/faults`` and print its figures for bench/README.md.

The matrix itself is the test suite in ``tests/faults`` (run in CI with the other tests):

- ``test_kill_matrix.py``: ``kill -9`` of the training child and of its parent (the scheduler
  process) at 20 random points each (seeded), every job recovered and resumed to the end;
- ``test_disk_full.py``: a full disk (a real, small tmpfs) at every write site, and through
  ``smalltrain train``;
- ``test_bad_input.py``: the bad-input corpus (audio files and folders, settings, detection
  datasets), each case with its expected one-line message;
- ``test_dead_owner.py``, ``test_leftovers.py``: dead owners, registration once per job, name
  reservation, partial writes and unverified checkpoints.

This script runs them with ``$SMALLTRAIN_FAULT_REPORT`` set, reads the report the suite writes
(``tests/faults/conftest.py``) and prints, per group: cases, clean errors (passed), known gaps
(expected failures, with their reason in the tests), tracebacks shown, hangs (a test timed out)
and files lost (checkpoints verified before a kill and missing after).

Usage: python bench/fault_matrix.py [pytest args...]   (e.g. -k "not kill" for a quick run)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "test_kill_matrix.py": "kill -9 matrix",
    "test_disk_full.py": "full disk",
    "test_bad_input.py": "bad-input corpus",
    "test_dead_owner.py": "dead owner, names, registration",
    "test_leftovers.py": "partial writes, unverified checkpoints",
}


def _group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    name = GROUPS.get(module, module)
    if module == "test_bad_input.py":
        test = nodeid.split("::", 1)[1].split("[", 1)[0]
        part = {
            "test_bad_audio_file": "audio files",
            "test_unusable_audio_folder": "audio folders",
            "test_absurd_setting": "settings",
        }.get(test, "detection")
        name = f"{name}: {part}"
    return name


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "faults.json"
        env = {**os.environ, "SMALLTRAIN_FAULT_REPORT": str(report_path)}
        started = time.monotonic()
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"]
        done = subprocess.run([*cmd, *sys.argv[1:]], cwd=ROOT, env=env, check=False)
        wall = time.monotonic() - started
        if not report_path.is_file():
            print("the fault suite wrote no report", file=sys.stderr)
            return 1
        report = json.loads(report_path.read_text())
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for test in report["tests"]:
        row = rows[_group(test["test"])]
        row["cases"] += 1
        row["clean"] += test["outcome"] == "passed"
        row["gaps"] += test["xfail"]
        row["tracebacks"] += test["traceback"]
        row["hangs"] += "Timeout" in test.get("longrepr", "")
        row["seconds"] += test["seconds"]
    lost = sum(int(c.get("lost", 0)) for c in report["counts"])
    print(f"\nMachine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; {wall:.0f} s in all\n")  # fmt: skip
    print("| group | cases | clean errors | known gaps | tracebacks shown | hangs | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, row in sorted(rows.items()):
        print(f"| {name} | {row['cases']:.0f} | {row['clean']:.0f} | {row['gaps']:.0f} | "
              f"{row['tracebacks']:.0f} | {row['hangs']:.0f} | {row['seconds']:.0f} |")  # fmt: skip
    print("\n| kills | count | jobs | attempts | corrupt | unverified | lost | partial writes |")
    print("|---|---|---|---|---|---|---|---|")
    for c in report["counts"]:
        print(f"| {c['group']} | {c['kills']} | {c['jobs']} | {c['attempts']} | {c['corrupt']} | "
              f"{c['unverified']} | {c['lost']} | {c['partial_writes_seen']} |")  # fmt: skip
    print(f"\nfiles lost in all: {lost}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
