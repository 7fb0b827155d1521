"""Issue 7's acceptance, slow (about 5 minutes per seed): the quickstart learns for three seeds.

Run with `make test-all` or `pytest -m slow tests/test_quickstart_learns.py`.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_reaches_srcc_075_on_held_out_content_for_three_seeds(tmp_path):
    env = {**os.environ, "SEEDS": "0 1 2", "OUT": str(tmp_path / "seeds"), "PY": str(ROOT / ".venv" / "bin" / "python")}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "quickstart_seeds.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    rows = re.findall(r"seed (\d+): srcc (\S+) -> (\S+)\s+plcc (\S+) -> (\S+)", result.stdout)
    assert len(rows) == 3, result.stdout
    for seed, srcc0, srcc, plcc0, plcc in rows:
        assert abs(float(srcc0)) < 0.4, f"seed {seed}: untrained SRCC should be about 0, got {srcc0}"
        assert float(srcc) >= 0.75 and float(plcc) >= 0.7, f"seed {seed}: SRCC {srcc}, PLCC {plcc}"
