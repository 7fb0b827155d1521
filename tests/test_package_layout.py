"""The package's shape: training never imports reporting, the run reader needs no Lightning, and no
two modules share a file name."""

from __future__ import annotations

import ast
import collections
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "c2s_lightning"
# The training path: everything `fit` loads, and the CLI that dispatches to the tools.
TRAINING = [*(PACKAGE / d for d in ("data", "models", "callbacks", "scoring")),
            PACKAGE / "cli.py", PACKAGE / "lightning_cli.py", PACKAGE / "loggers.py", PACKAGE / "config_keys.py"]


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_training_module_imports_reporting():
    files = [f for p in TRAINING for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    assert len(files) > 30
    offenders = {f.relative_to(PACKAGE).as_posix(): sorted(m for m in imported_modules(f)
                                                            if m.startswith("c2s_lightning.reporting"))
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


# The reader first (a fresh interpreter holds no Lightning yet), then, with this package's modules
# dropped, the training path as `fit` loads it.
CHECK = """import json, sys
import c2s_lightning.reporting.wandb_files
reader = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning"))
for name in [m for m in sys.modules if m.split(".")[0] == "c2s_lightning"]:
    del sys.modules[name]
import c2s_lightning.cli, c2s_lightning.lightning_cli
training = sorted(m for m in sys.modules if m.startswith("c2s_lightning."))
print(json.dumps({"reader": reader, "training": training}))
"""


def test_reader_imports_no_lightning_and_training_imports_no_reporting():
    out = subprocess.run([sys.executable, "-c", CHECK], check=True, capture_output=True, text=True,
                         cwd=PACKAGE.parent).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded["reader"] == []
    assert "c2s_lightning.lightning_cli" in loaded["training"]  # the check saw the training path
    assert [m for m in loaded["training"] if m.startswith("c2s_lightning.reporting")] == []


def test_module_file_names_are_unique():
    names = collections.Counter(p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    assert {name: n for name, n in names.items() if n > 1} == {}


def test_files_stay_small_and_data_code_never_reads_the_trainer():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 300}
    assert sizes["data/datamodule.py"] <= 150
    for path in (PACKAGE / "data").rglob("*.py"):
        code = path.read_text()
        assert "fit_loop" not in code and ".trainer" not in code, path  # resume goes through loader state
    for path in (PACKAGE / "models").rglob("*.py"):
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "connect"]
        assert not calls, f"{path}: the launcher connects the data module, not the model"
