"""Issue 15's last acceptance item, slow (about 25 minutes): every command of the README and docs/
runs as written on a fresh clone.

Run with `make test-all` or `pytest -m slow tests/test_readme_walk.py`; the walker itself is
tests/readme_walk.py (its output says which command failed, with the tail of its output).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import readme_walk as walk  # noqa: E402


@pytest.mark.slow
def test_every_readme_command_runs_as_written_on_a_fresh_clone():
    # the venv running this test is the one linked into the clone (make test-all: the checkout's .venv)
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "readme_walk.py"), "--venv", sys.prefix],
                            cwd=ROOT, capture_output=True, text=True)
    print(result.stdout)  # the walk's lines, shown with -s or -rP
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    passed = set(re.findall(r"^pass +[\d.]+s  (.*)$", result.stdout, flags=re.M))
    planned = walk.plan(walk.documented_commands(ROOT))
    expected = {c.text for kind, c in planned if kind == "run"}
    assert expected and expected <= passed, sorted(expected - passed)
    checked = set(re.findall(r"^checked +[\d.]+s  (.*)$", result.stdout, flags=re.M))
    assert {c.check_text() for kind, c in planned if kind == "check"} <= checked
    assert re.search(rf"^readme_walk: {len(expected)} ran, {len(expected)} passed, ", result.stdout, flags=re.M)
