"""Session-wide fixtures: tiny backbones (built once, random weights, no download) and images."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from launcher_env import LAUNCHER_ENV

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at test time
os.environ["WANDB_MODE"] = "offline"  # tests never reach a W&B server
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session", autouse=True)
def image_check_cache(tmp_path_factory):
    """The read-time image-check cache lives in a temporary folder, never the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("c2s-cache")
    previous = os.environ.get("C2S_CACHE_DIR")
    os.environ["C2S_CACHE_DIR"] = str(folder)  # also reaches subprocess tests
    yield folder
    if previous is None:
        os.environ.pop("C2S_CACHE_DIR", None)
    else:
        os.environ["C2S_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def launcher_env_stays_in_its_test(request):
    """Lightning's launchers export MASTER_ADDR/PORT, NODE_RANK and LOCAL_RANK into the process that
    launches; a later test's `--devices 2` subprocess inheriting LOCAL_RANK takes itself for a rank
    started from outside, spawns no second rank and waits for it forever. Each test gets the
    environment it started with; a leak is named, so the test that leaks can be found."""
    before = {name: os.environ.get(name) for name in LAUNCHER_ENV}
    yield
    leaked = sorted(name for name in LAUNCHER_ENV if os.environ.get(name) != before[name])
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if leaked:
        sys.__stderr__.write(f"\n{request.node.nodeid} left {', '.join(leaked)} in the environment (restored)\n")


@pytest.fixture(scope="session")
def tiny_backbone_cache():
    """Tiny backbones by family name, built on first use and shared by the whole session.

    Tests that change a model (LoRA wrapping, training steps) must build their own instead.
    """
    from c2s_lightning.models.backbones import build_backbone

    cache = {}

    def get(name: str = "tiny-llava"):
        if name not in cache:
            cache[name] = build_backbone(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tiny_llava(tiny_backbone_cache):
    """The default tiny LLaVA backbone (shared: do not modify it)."""
    return tiny_backbone_cache("tiny-llava")


@pytest.fixture
def make_images():
    """``make_images(n, size=(32, 32), seed=0)`` -> n random RGB PIL images (distinct per seed)."""

    def make(n: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> list[Image.Image]:
        rng = np.random.default_rng(seed)
        w, h = size
        return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(n)]

    return make
