"""One rule for the cache folders: the image-check cache and the comparison cache are named
subfolders of one root ($C2S_CACHE_DIR, else $XDG_CACHE_HOME/c2s_lightning, else
~/.cache/c2s_lightning), and C2S_CACHE_DIR=off turns both off."""

from __future__ import annotations

import pytest
from PIL import Image

from c2s_lightning.data.image_checks import unreadable_images
from c2s_lightning.cache.wiring import open_cache
from c2s_lightning.cache.store import ComparisonCache


def where_the_caches_go(tmp_path):
    """(folders holding the image-check cache's files, the default comparison cache's folder)."""
    image = tmp_path / "photos" / "a.png"
    image.parent.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8)).save(image)
    assert unreadable_images([image], "full", cache_key=str(image.parent)) == {}
    checks = sorted({p.parent for p in tmp_path.rglob("*.json")})
    cache = open_cache(True)
    return checks, None if cache is None else cache.folder


@pytest.mark.parametrize("env, root", [
    ({"C2S_CACHE_DIR": "chosen"}, "chosen"),
    ({"XDG_CACHE_HOME": "xdg"}, "xdg/c2s_lightning"),
    ({}, "home/.cache/c2s_lightning"),
])
def test_both_caches_are_named_subfolders_of_one_root(tmp_path, monkeypatch, env, root):
    for name in ("C2S_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    checks, comparisons = where_the_caches_go(tmp_path)
    assert checks == [tmp_path / root / "decoded-images"]
    assert comparisons == tmp_path / root / "comparisons"


def test_off_turns_both_caches_off(tmp_path, monkeypatch):
    monkeypatch.setenv("C2S_CACHE_DIR", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert where_the_caches_go(tmp_path) == ([], None)
    with pytest.raises(ValueError, match="C2S_CACHE_DIR=off"):
        ComparisonCache()
    assert ComparisonCache(tmp_path / "given").folder == tmp_path / "given"  # a folder given is used
    assert not (tmp_path / "home").exists() and not (tmp_path / "off").exists()
