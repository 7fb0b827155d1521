"""tools/wheelhouse.py: which runtime dependencies an offline GPU node gets as wheels, and how they are fetched.

Hand-made dependency graphs check the rules (markers for the target, extras followed, torch and the
CUDA packages never touched, a kept package's own dependencies left to the node); the project's real
graph (this venv's metadata) against the shipped package list checks the answer the issue measured.
Nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import wheelhouse  # noqa: E402

ENV = wheelhouse.target_environment("3.12")
# a small world: app needs lib[fast] and torch; lib's extra brings speedup; old-py only below Python 3.11;
# torch would bring nvidia-cublas (never walked); keeper is on the node and needs tzdata (its business)
GRAPH = {
    "app": ["lib[fast]>=2", "torch>=2.3", "keeper"],
    "lib": ["speedup>=1; extra == 'fast'", "old-py; python_version < '3.11'", "winonly; sys_platform == 'win32'"],
    "speedup": [],
    "torch": ["nvidia-cublas; sys_platform == 'linux'"],
    "keeper": ["tzdata"],
    "tzdata": [],
}


def test_target_list_reads_pip_freeze_and_bare_names(tmp_path):
    listed = tmp_path / "packages.txt"
    listed.write_text("# a comment\nTransformers==5.17.0\nhuggingface_hub==1.33.0\npeft\n\n")
    assert wheelhouse.read_target(listed) == {"transformers": Version("5.17.0"), "huggingface-hub": Version("1.33.0"),
                                              "peft": None}
    listed.write_text("numpy==2.5.2\nnot a package line\n")
    with pytest.raises(SystemExit, match=r"packages.txt:2: not a 'name==version' line"):
        wheelhouse.read_target(listed)


def test_closure_follows_extras_and_target_markers_and_stops_at_torch():
    wanted = wheelhouse.closure([Requirement("app")], ENV, requires=GRAPH.get)
    assert sorted(wanted) == ["app", "keeper", "lib", "speedup", "torch", "tzdata"]  # no old-py, winonly, nvidia
    assert str(wanted["lib"]) == ">=2" and str(wanted["speedup"]) == ">=1"
    with pytest.raises(SystemExit, match="missing-one is needed but not installed"):
        wheelhouse.closure([Requirement("missing-one")], ENV, requires=GRAPH.get)


@pytest.mark.parametrize("have, fetched", [
    ("missing", "missing"),
    (None, None),                                       # installed, version unread: kept
    ("5.24.0", None), ("5.30.1", None), ("5.17.0", None),  # the pin, newer, the tested floor
    ("5.16.2", "5.16.2 fails >=5.17.0"),
])
def test_plan_fetches_the_pin_when_the_node_lacks_it_or_holds_a_release_below_the_floor(have, fetched):
    wanted = {"transformers": Requirement("transformers>=5.17.0").specifier, "torch": Requirement("torch").specifier,
              "nvidia-nccl-cu13": Requirement("nvidia-nccl-cu13").specifier}
    target = {} if have == "missing" else {"transformers": None if have is None else Version(have)}
    pins = {"transformers": Version("5.24.0"), "torch": Version("2.13.0"), "nvidia-nccl-cu13": Version("2.28")}
    plan = wheelhouse.plan(wanted, target, pins)  # torch and nvidia missing on the node: still never fetched
    assert plan == ([] if fetched is None else [("transformers", Version("5.24.0"), fetched)])


def test_unpinned_dependency_is_an_error():
    with pytest.raises(SystemExit, match="speedup is a runtime dependency but constraints.txt does not pin it"):
        wheelhouse.plan({"speedup": Requirement("speedup").specifier}, {}, {})


def test_a_kept_package_brings_nothing_a_fetched_one_brings_its_dependencies():
    pins = dict.fromkeys(GRAPH, Version("3.0"))
    target = {"keeper": None, "lib": Version("1.0")}  # lib fails >=2: fetched
    roots = [Requirement(line) for line in GRAPH["app"]]  # app is the project (its pyproject's dependencies)
    fetch, wanted = wheelhouse.fetch_list(roots, ENV, target, pins, requires=GRAPH.get)
    assert [(name, why) for name, _, why in fetch] == [("lib", "1.0 fails >=2"), ("speedup", "missing")]
    assert "tzdata" not in wanted  # keeper's dependency: installed on the node along with keeper


def test_the_shipped_gpu_image_list_gets_what_the_issue_measured_missing(capsys):
    """The real graph of this project (this venv's metadata) against tools/gpu_image_packages.txt."""
    assert wheelhouse.main(["--dry-run"]) == 0
    lines = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines() if "==" in line)
    names = {line.split("==")[0]: why for line, why in lines.items()}
    assert "transformers" not in names and "huggingface-hub" not in names  # the node's 5.17 / 1.33 meet the floor
    for name in ("jsonargparse", "omegaconf", "openpyxl", "wandb", "deepspeed", "hjson", "pydantic"):
        assert names[name] == "(missing)", name
    assert not {"torch", "triton", "numpy", "lightning", "torchmetrics", "tokenizers"} & set(names)
    assert not any(name.startswith(("nvidia", "cuda")) for name in names)


def test_pip_commands_fetch_target_wheels_only_and_build_deepspeed_here(tmp_path):
    fetch = [("transformers", Version("5.24.0"), "x"), ("deepspeed", Version("0.19.8"), "missing")]
    download = wheelhouse.pip_download(fetch, tmp_path, "3.12")
    assert download[1:4] == ["-m", "pip", "download"] and download[-1] == "transformers==5.24.0"
    for flag in ("--only-binary=:all:", "--no-deps", "manylinux2014_x86_64"):
        assert flag in download
    assert download[download.index("--python-version") + 1] == "3.12"
    assert download[download.index("--implementation") + 1] == "cp"
    build = wheelhouse.pip_build("deepspeed", Version("0.19.8"), tmp_path)
    assert build[1:4] == ["-m", "pip", "wheel"] and build[-1] == "deepspeed==0.19.8" and "--no-deps" in build


def test_a_folder_with_wheels_in_it_is_refused(tmp_path):
    (tmp_path / "old-1.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(SystemExit, match="is not empty"):
        wheelhouse.main(["--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        wheelhouse.main(["--without", "not-a-dependency", "--dry-run"])
