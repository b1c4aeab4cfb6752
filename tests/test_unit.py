"""The C unit tests (one TAP binary per module, built into build/tests), run under pytest so
that the suite has one runner and one summary line."""
import os
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

UNIT_DIR = os.path.join(BUILD, "tests")
BINARIES = sorted(f for f in os.listdir(UNIT_DIR) if f.startswith("test_")) if os.path.isdir(UNIT_DIR) else []


def test_unit_binaries_were_built():
    assert BINARIES, f"no unit test binaries in {UNIT_DIR}: run `make` first"


@pytest.mark.parametrize("binary", BINARIES)
def test_unit(binary):
    p = subprocess.run([os.path.join(UNIT_DIR, binary)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    out = p.stdout + p.stderr
    failed = [line for line in p.stdout.splitlines() if line.startswith("not ok")]
    plan = re.search(r"^1\.\.(\d+)", p.stdout, re.M)
    assert plan, f"{binary} printed no TAP plan:\n{out}"
    ran = len([line for line in p.stdout.splitlines() if re.match(r"(not )?ok \d+", line)])
    assert ran == int(plan.group(1)), f"{binary}: planned {plan.group(1)} tests, ran {ran}:\n{out}"
    assert not failed and p.returncode == 0, f"{binary} failed ({p.returncode}):\n{out}"
