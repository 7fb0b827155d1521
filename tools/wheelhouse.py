"""Wheels for an offline GPU node: what the node's Python lacks of the project's runtime dependencies.

A GPU node's own Python holds the CUDA build of torch (which a venv made on a CPU machine does not)
but not every package the project needs, and it cannot reach an index. This builds, on a machine
that can, a folder of wheels to carry there:

    python tools/wheelhouse.py --target tools/gpu_image_packages.txt --out wheelhouse   # here
    python3 -m pip install --no-index --no-deps --target DIR wheelhouse/*.whl            # there
    PYTHONPATH=$PWD:DIR python3 -m c2s_lightning ...

The dependencies are the closure of pyproject.toml's ``dependencies`` (and the ``deepspeed``
extra) through the requirements of the packages installed in this Python, markers evaluated for the
target (Linux x86_64, CPython ``--python-version``). A dependency is fetched, at its constraints.txt
pin, when the target lacks it or when its version there fails a requirement. pyproject's lower bounds
are tested ones (`make test-floor` runs the model and scoring tests on transformers 5.17, lightning
2.6.6, torchmetrics 1.9, huggingface_hub 1.33, tokenizers 0.23), so a node's older release that meets
them is kept: carrying a newer transformers would only add 13 MiB. torch, triton,
nvidia-* and cuda-* are never fetched: the node's CUDA build must stay the one that is imported.
deepspeed has no wheel on the index, only a source archive: its pure-Python wheel is built here
with ``DS_BUILD_OPS=0`` (its CUDA ops are compiled just in time on the node, where nvcc exists).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
NEVER = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")  # the node's CUDA stack, never replaced
SOURCE_ONLY = {"deepspeed"}  # no wheel on the index: built here, ops off
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
GOAL_MIB = 40


def read_target(path: Path) -> dict[str, Version | None]:
    """``pip list --format freeze`` lines as {name: version}; a bare name has an unknown version."""
    found: dict[str, Version | None] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name.strip()):
            raise SystemExit(f"{path}:{number}: not a 'name==version' line: {line!r}")
        found[canonicalize_name(name)] = Version(version) if version else None
    return found


def read_pins(constraints: Path) -> dict[str, Version]:
    """constraints.txt's ``name==version`` pins."""
    pins = {}
    for line in constraints.read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[canonicalize_name(name)] = Version(version)
    return pins


def project_requirements(pyproject: Path, extras: tuple[str, ...] = ("deepspeed",)) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


def target_environment(python_version: str) -> dict[str, str]:
    """Marker values of a CPython ``python_version`` on Linux x86_64."""
    env = default_environment()
    env.update(python_version=python_version, python_full_version=f"{python_version}.0", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env


def installed_requires(name: str) -> list[str] | None:
    """Requires-Dist of ``name`` as installed in this Python; None if it is not installed."""
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return None


def closure(roots: list[Requirement], environment: dict[str, str], stop: Callable[[str], bool] = NEVER.match,
            requires: Callable[[str], list[str] | None] = installed_requires) -> dict[str, SpecifierSet]:
    """Every distribution ``roots`` need on the target, with the specifiers asked of it.

    ``requires(name)`` gives a distribution's Requires-Dist lines (this Python's installed ones by
    default). The walk does not go past a distribution ``stop`` names (the node's own: torch, or
    one it keeps, whose dependencies pip installed there with it).
    """
    wanted: dict[str, SpecifierSet] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [(r, frozenset([""])) for r in roots]
    while queue:
        requirement, extras = queue.pop()
        if requirement.marker and not any(requirement.marker.evaluate(environment | {"extra": e}) for e in extras):
            continue
        name = canonicalize_name(requirement.name)
        wanted[name] = wanted.get(name, SpecifierSet()) & requirement.specifier
        key = (name, frozenset(requirement.extras))
        if stop(name) or key in seen:
            continue
        seen.add(key)
        lines = requires(name)
        if lines is None:
            raise SystemExit(f"{name} is needed but not installed in {sys.executable}: run `make install` first")
        queue += [(Requirement(line), frozenset({"", *requirement.extras})) for line in lines]
    return wanted


def fetch_list(roots: list[Requirement], environment: dict[str, str], target: dict[str, Version | None],
               pins: dict[str, Version], requires: Callable[[str], list[str] | None] = installed_requires):
    """``plan`` over the closure that stops at what the target keeps (and ``closure``'s wanted).

    Which distributions the target keeps depends on the specifiers of those that are fetched, and
    the other way round, so the two are computed in turn until they agree.
    """
    kept: set[str] = set()
    for _ in range(20):
        wanted = closure(roots, environment, lambda n: bool(NEVER.match(n)) or n in kept, requires)
        fetch = plan(wanted, target, pins)
        now = set(wanted) - {name for name, _, _ in fetch}
        if now == kept:
            return fetch, wanted
        kept = now
    raise SystemExit("the packages to fetch did not settle after 20 rounds")


def plan(wanted: dict[str, SpecifierSet], target: dict[str, Version | None],
         pins: dict[str, Version]) -> list[tuple[str, Version, str]]:
    """(name, version to fetch, why) for each wanted distribution the target cannot serve, by name."""
    fetch = []
    for name in sorted(wanted):
        if NEVER.match(name):
            continue
        if name not in pins:
            raise SystemExit(f"{name} is a runtime dependency but constraints.txt does not pin it")
        pin, have = pins[name], target.get(name, "missing")
        if have == "missing":
            why = "missing"
        elif have is None:
            continue  # installed at a version nobody read: taken as supported
        elif not wanted[name].contains(have, prereleases=True):
            why = f"{have} fails {wanted[name]}"
        else:
            continue
        fetch.append((name, pin, why))
    return fetch


def pip_download(fetch: list[tuple[str, Version, str]], out: Path, python_version: str) -> list[str]:
    """The command fetching every binary wheel of ``fetch`` for the target, without dependencies."""
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *platforms,
            "--python-version", python_version, "--implementation", "cp", "--no-deps", "--dest", str(out),
            *(f"{name}=={version}" for name, version, _ in fetch if name not in SOURCE_ONLY)]


def pip_build(name: str, version: Version, out: Path) -> list[str]:
    """The command building a source-only package's wheel here (no isolation: it imports this torch)."""
    return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
            "--wheel-dir", str(out), f"{name}=={version}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--target", type=Path, default=ROOT / "tools" / "gpu_image_packages.txt",
                        help="the node's `pip list --format freeze`")
    parser.add_argument("--out", type=Path, default=ROOT / "wheelhouse", help="folder for the wheels")
    parser.add_argument("--python-version", default="3.12", help="the node's Python, major.minor")
    parser.add_argument("--without", nargs="*", default=[], metavar="NAME",
                        help="leave out these dependencies and what only they need (wandb: runs that log no W&B)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be fetched, fetch nothing")
    ns = parser.parse_args(argv)
    if not ns.target.is_file():
        parser.error(f"--target {ns.target}: no such file")
    roots = project_requirements(ROOT / "pyproject.toml")
    without = {canonicalize_name(n) for n in ns.without}
    if unknown := without - {canonicalize_name(r.name) for r in roots}:
        parser.error(f"--without {' '.join(sorted(unknown))}: not a dependency named in pyproject.toml")
    roots = [r for r in roots if canonicalize_name(r.name) not in without]
    fetch, wanted = fetch_list(roots, target_environment(ns.python_version), read_target(ns.target),
                               read_pins(ROOT / "constraints.txt"))
    for name, version, why in fetch:
        print(f"{name}=={version}  ({why})")
    print(f"{len(fetch)} of {len(wanted)} runtime dependencies to fetch for {ns.target}")
    if ns.dry_run or not fetch:
        return 0
    if ns.out.is_dir() and any(ns.out.iterdir()):  # old wheels would mix in and count in the size
        raise SystemExit(f"--out {ns.out} is not empty: remove it or name a new folder")
    ns.out.mkdir(parents=True, exist_ok=True)
    subprocess.run(pip_download(fetch, ns.out, ns.python_version), check=True)
    for name, version, _ in fetch:
        if name in SOURCE_ONLY:
            subprocess.run(pip_build(name, version, ns.out), check=True, env=os.environ | {"DS_BUILD_OPS": "0"})
    wheels = sorted(ns.out.glob("*.whl"))
    mib = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels, {mib:.1f} MiB in {ns.out}"
          + ("" if mib <= GOAL_MIB else f" (over the goal of {GOAL_MIB} MiB; `--without wandb` saves ~20 MiB)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
