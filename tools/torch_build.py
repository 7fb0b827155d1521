"""Which build of torch ``make install`` installs, and a check that it installed that one.

    python tools/torch_build.py choose auto|cpu|cuda      -> prints cpu or cuda
    python tools/torch_build.py index-args cpu|cuda URL   -> prints the pip options for that build
    python tools/torch_build.py check cpu|cuda            -> exit 1 with a reason if torch is the other build

On PyPI, torch's Linux wheel is the CUDA build (it pulls ~20 nvidia-* packages, several GB).
The CPU build lives on PyTorch's own index (https://download.pytorch.org/whl/cpu) as
``2.13.0+cpu``, which ranks above the plain ``2.13.0`` for ``torch==2.13.0``, so naming that index
as an extra index selects it. pip retries an unreachable index for every package it looks up
(about 8 s each), so the index is probed once first and left out when it cannot be reached: then
a CPU wheel must come from a wheel folder or index pip is configured with (``find-links``), and
``check`` says so when none did.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request

PROBE_SECONDS = 5


def has_nvidia_gpu() -> bool:
    """``nvidia-smi -L`` lists at least one GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listing.returncode == 0 and "GPU" in listing.stdout


def choose(wanted: str) -> str:
    if wanted not in ("auto", "cpu", "cuda"):
        raise SystemExit(f"TORCH must be cpu, cuda or auto, not {wanted!r}")
    if wanted == "auto":
        return "cuda" if has_nvidia_gpu() else "cpu"
    return wanted


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=PROBE_SECONDS):
            return True
    except (OSError, ValueError):
        return False


def index_args(build: str, url: str) -> str:
    if build != "cpu":
        return ""
    if reachable(url):
        return f"--extra-index-url {url}"
    print(f"note: PyTorch's CPU index {url} cannot be reached; the CPU build of torch must come from a "
          "wheel folder or index pip is configured with (checked after the install)", file=sys.stderr)
    return ""


def check(build: str) -> int:
    import torch

    got = "cuda" if torch.version.cuda else "cpu"
    if got == build:
        print(f"torch {torch.__version__}: the {build} build, as asked")
        return 0
    if build == "cpu":
        print(f"error: asked for the CPU build, but pip installed torch {torch.__version__} built for CUDA "
              f"{torch.version.cuda} (PyTorch's CPU index was unreachable and no CPU wheel was at hand): run "
              "`make clean`, then install where https://download.pytorch.org/whl/cpu is reachable or with a "
              "torch-2.13.0+cpu wheel in a find-links folder (PIP_FIND_LINKS)", file=sys.stderr)
    else:
        print(f"error: asked for the CUDA build, but torch {torch.__version__} is the CPU build (a CPU wheel "
              "from a find-links folder or index wins, or an earlier install is kept): run `make clean`, then "
              "`make install TORCH=cuda` with no CPU wheel configured", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["choose"] and len(argv) == 2:
        print(choose(argv[1]))
        return 0
    if argv[:1] == ["index-args"] and len(argv) == 3:
        print(index_args(argv[1], argv[2]))
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        return check(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
