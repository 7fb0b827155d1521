"""ComparisonCache: exact round trips, keys that never cross models, bounds, several writers, kills.

Expected values never come from the cache: each test key's digests and logits are derived from
its name by md5 and a seeded generator, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
import sqlite3
import time

import numpy as np
import pytest
from PIL import Image

from c2s_lightning.commands import comparison_cache_cmd
from c2s_lightning.cache.store import (
    ENTRY_OVERHEAD,
    CacheError,
    ComparisonCache,
    ComparisonKey,
    default_cache_dir,
    file_digest,
    pixel_digest,
    protocol_key,
)

PROTOCOL = protocol_key({"template": "compare", "pad_to_square": False})
FORK = multiprocessing.get_context("fork")  # children use only sqlite and numpy: fork is safe and fast


def key(name: str, fingerprint: str = "weights-a", protocol: str = PROTOCOL) -> ComparisonKey:
    digest = hashlib.md5(name.encode()).hexdigest()  # 32 hex characters, like an image digest
    return ComparisonKey(fingerprint, protocol, digest, digest[::-1])


def value(name: str, dtype=np.float32) -> np.ndarray:
    seed = int(hashlib.md5(name.encode()).hexdigest(), 16)
    return np.random.default_rng(seed).standard_normal(5).astype(dtype)


def database_rows(cache: ComparisonCache) -> tuple[int, int, str]:
    """(COUNT(*), the triggers' entry total, integrity check) read with a separate connection."""
    conn = sqlite3.connect(cache.path)
    try:
        count = conn.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0]
        total = conn.execute("SELECT entries FROM totals").fetchone()[0]
        return count, total, conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_round_trip_is_bit_exact_for_float32_and_float64(tmp_path):
    special = [-0.0, np.inf, -np.inf, 1e-45, 3.4e38, -1.5]
    f32 = np.array(special[:4] + [0.0], dtype=np.float32)
    f32.view(np.uint32)[4] = 0x7FC0_1234  # a NaN with a payload: only a byte copy keeps it
    f64 = np.array([-0.0, np.nextafter(1.0, 2.0), 5e-324, np.pi, -np.e], dtype=np.float64)
    big_endian = np.arange(5, dtype=">f4") / 3
    items = {key("f32"): f32, key("f64"): f64, key("be"): big_endian}
    with ComparisonCache(tmp_path) as cache:
        assert cache.put_many(items) == 3
    got = ComparisonCache(tmp_path).get_many(items)  # a fresh object: read from the file
    assert got[key("f32")].dtype == np.float32 and got[key("f32")].tobytes() == f32.tobytes()
    assert got[key("f64")].dtype == np.float64 and got[key("f64")].tobytes() == f64.tobytes()
    np.testing.assert_array_equal(got[key("be")], np.arange(5, dtype=np.float32) / 3)


def test_changed_fingerprint_or_protocol_never_hits(tmp_path):
    cache = ComparisonCache(tmp_path)
    cache.put_many({key(f"pair{i}"): value(f"pair{i}") for i in range(4)})
    other_protocol = protocol_key({"template": "compare", "pad_to_square": True})
    assert cache.get_many([key(f"pair{i}", fingerprint="weights-b") for i in range(4)]) == {}
    assert cache.get_many([key(f"pair{i}", protocol=other_protocol) for i in range(4)]) == {}
    assert (cache.hits, cache.misses) == (0, 8)
    hits = cache.get_many([key("pair0"), key("pair0"), key("absent")])  # repeats count once
    assert list(hits) == [key("pair0")] and (cache.hits, cache.misses) == (1, 9)
    cache.put_many({key("pair0", fingerprint="weights-b"): value("b0")})
    assert cache.clear(fingerprint="weights-a") == 4
    assert [c[0] for c in cache.stats().contexts] == ["weights-b"]


def test_a_present_key_keeps_its_first_value(tmp_path):
    cache = ComparisonCache(tmp_path)
    assert cache.put_many([(key("x"), value("first"))]) == 1
    assert cache.put_many([(key("x"), value("second"))]) == 0
    np.testing.assert_array_equal(cache.get_many([key("x")])[key("x")], value("first"))


def test_least_recently_used_entries_are_evicted_past_max_entries(tmp_path):
    cache = ComparisonCache(tmp_path, max_entries=10, max_bytes=None)
    for i in range(10):
        cache.put_many({key(f"e{i}"): value(f"e{i}")})
    cache.get_many([key("e0")])  # e0 is now the most recently used
    cache.put_many({key("e10"): value("e10")})
    # 11 > 10 entries: cut to int(0.9 * 10) = 9, dropping the 2 least recently used, e1 and e2
    survivors = cache.get_many([key(f"e{i}") for i in range(11)])
    assert sorted(survivors) == sorted(key(f"e{i}") for i in [0, *range(3, 11)])
    assert cache.evicted == 2 and database_rows(cache)[:2] == (9, 9)


def test_max_bytes_bounds_the_size_estimate(tmp_path):
    per_entry = ENTRY_OVERHEAD + 5 * 4
    cache = ComparisonCache(tmp_path, max_bytes=20 * per_entry)
    cache.put_many({key(f"b{i}"): value(f"b{i}") for i in range(20)})
    assert cache.stats().entries == 20  # exactly at the bound: nothing evicted
    cache.put_many({key("b20"): value("b20")})
    stats = cache.stats()
    assert stats.entries == 18 and stats.bytes == 18 * per_entry  # int(0.9 * 20) entries left
    assert key("b20") in cache.get_many([key("b20")])  # the newest entry stays


def test_clear_empties_and_stats_count(tmp_path):
    cache = ComparisonCache(tmp_path, max_bytes=None)
    cache.put_many({key(f"c{i}"): value(f"c{i}", np.float64) for i in range(7)})
    stats = cache.stats()
    assert (stats.entries, stats.bytes) == (7, 7 * (ENTRY_OVERHEAD + 40))
    assert stats.contexts == [("weights-a", PROTOCOL, 7)] and stats.file_bytes > 0
    assert cache.clear() == 7
    assert cache.stats().entries == 0 and cache.get_many([key("c0")]) == {}


def _writer(folder, worker: str, barrier, rounds: int) -> None:
    cache = ComparisonCache(folder)
    barrier.wait()  # both open a database that does not exist yet, at once
    for r in range(rounds):
        names = [f"shared-{r}-{k}" for k in range(5)] + [f"{worker}-{r}-{k}" for k in range(5)]
        cache.put_many({key(n): value(n) for n in names})
        got = cache.get_many([key(n) for n in names])
        if any(not np.array_equal(got[key(n)], value(n)) for n in names):
            raise SystemExit(f"{worker}: wrong value read back in round {r}")


def test_two_processes_writing_at_once_leave_every_entry_correct(tmp_path):
    rounds = 150
    barrier = FORK.Barrier(2)
    workers = [FORK.Process(target=_writer, args=(tmp_path, w, barrier, rounds)) for w in ("p", "q")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    names = [f"{w}-{r}-{k}" for w in ("shared", "p", "q") for r in range(rounds) for k in range(5)]
    got = ComparisonCache(tmp_path).get_many([key(n) for n in names])
    assert len(got) == len(names) == 3 * rounds * 5
    assert all(np.array_equal(got[key(n)], value(n)) for n in names)
    assert database_rows(ComparisonCache(tmp_path)) == (len(names), len(names), "ok")


def _endless_writer(folder, committed) -> None:
    cache = ComparisonCache(folder)
    for r in itertools.count():
        cache.put_many({key(f"kill-{r}-{k}"): value(f"kill-{r}-{k}") for k in range(200)})
        committed.value = r + 1


def test_a_writer_killed_mid_write_leaves_committed_entries_intact(tmp_path):
    committed = FORK.Value("i", 0)
    child = FORK.Process(target=_endless_writer, args=(tmp_path, committed))
    child.start()
    deadline = time.monotonic() + 60
    while committed.value < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    done = committed.value
    assert child.exitcode == -signal.SIGKILL and done >= 25
    cache = ComparisonCache(tmp_path)
    count, total, integrity = database_rows(cache)
    assert integrity == "ok" and count == total
    # Every reported round is there; the round being written is there whole or not at all.
    assert count in (200 * done, 200 * (done + 1))
    names = [f"kill-{r}-{k}" for r in range(count // 200) for k in range(200)]
    got = cache.get_many([key(n) for n in names])
    assert len(got) == count and all(np.array_equal(got[key(n)], value(n)) for n in names)
    cache.put_many({key("after"): value("after")})  # and it takes writes again
    assert database_rows(cache)[0] == count + 1


def test_bad_keys_values_and_files_are_named(tmp_path):
    cache = ComparisonCache(tmp_path / "ok")
    with pytest.raises(ValueError, match="image digests are 32 hex"):
        cache.put_many({ComparisonKey("w", PROTOCOL, "xyz", "0" * 32): value("v")})
    with pytest.raises(ValueError, match="non-empty fingerprint"):
        cache.get_many([ComparisonKey("", PROTOCOL, "0" * 32, "0" * 32)])
    with pytest.raises(ValueError, match=r"1-D float32 or float64.*\(2, 5\)"):
        cache.put_many({key("v"): np.zeros((2, 5), np.float32)})
    with pytest.raises(ValueError, match="float16"):
        cache.put_many({key("v"): np.zeros(5, np.float16)})
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "comparisons.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CacheError, match="junk/comparisons.sqlite3"):
        ComparisonCache(tmp_path / "junk").stats()


def test_protocol_key_is_canonical(tmp_path):
    a = protocol_key({"template": "t", "levels": ["inferior", "worse"], "pad": {"to_square": True}})
    b = protocol_key({"pad": {"to_square": True}, "levels": ("inferior", "worse"), "template": "t"})
    assert a == b and len(a) == 32
    assert protocol_key({"template": "t", "levels": ["inferior", "worse"], "pad": {"to_square": False}}) != a
    with pytest.raises(TypeError, match="not JSON-able"):
        protocol_key({"sizes": {1, 2}})
    with pytest.raises(ValueError, match="NaN"):
        protocol_key({"temperature": float("nan")})


def test_image_digests_follow_content(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "a.bmp")
    (tmp_path / "copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    with Image.open(tmp_path / "a.bmp") as decoded:
        assert pixel_digest(decoded) == pixel_digest(Image.fromarray(pixels.copy()))
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert pixel_digest(Image.fromarray(changed)) != pixel_digest(image)
    same_bytes = pixels.tobytes()  # equal bytes under another size or mode hash apart
    assert pixel_digest(Image.frombytes("RGB", (12, 10), same_bytes)) != pixel_digest(image)
    assert pixel_digest(Image.frombytes("LA", (4, 4), b"\x07" * 32)) != pixel_digest(
        Image.frombytes("I;16", (4, 4), b"\x07" * 32))
    palette = image.convert("P")
    other_palette = palette.copy()
    other_palette.putpalette([255 - c for c in palette.getpalette()])
    assert palette.tobytes() == other_palette.tobytes() and pixel_digest(palette) != pixel_digest(other_palette)
    assert file_digest(tmp_path / "a.png") == file_digest(tmp_path / "copy.png")
    assert file_digest(tmp_path / "a.png") != file_digest(tmp_path / "a.bmp")
    assert file_digest(tmp_path / "a.png") != pixel_digest(image)


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here" / "comparisons" == ComparisonCache().folder
    monkeypatch.delenv("C2S_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "c2s_lightning" / "comparisons"


def test_cache_command_prints_stats_and_clears(tmp_path, capsys):
    ComparisonCache(tmp_path).put_many({key(f"k{i}"): value(f"k{i}") for i in range(3)})
    assert comparison_cache_cmd.main(["stats", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "entries     3" in out and "weights-a" in out
    assert comparison_cache_cmd.main(["clear", "--dir", str(tmp_path)]) == 0
    assert "removed 3 comparisons" in capsys.readouterr().out
    assert ComparisonCache(tmp_path).stats().entries == 0
