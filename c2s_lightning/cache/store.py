"""A persistent cache of level logits, keyed by model, protocol and the two images' contents
(who uses it and what it saves: ``docs/fast_scoring.md``).

A pair's five level logits depend only on the weights, the comparison protocol and the two images,
so the key is ``ComparisonKey(fingerprint, protocol, first, second)``: the model fingerprint, a
``protocol_key`` and the images' content digests (``digests.py``). A changed model gives a new
fingerprint, so an entry of the old one is never hit.

**One SQLite database in WAL mode** (``<folder>/comparisons.sqlite3``), chosen over append-only
shards because it gives every property needed without code of ours: concurrent writers (each
write one ``BEGIN IMMEDIATE`` transaction, queued on SQLite's lock with a busy timeout; readers
never block and see only commits); a kill (even ``kill -9``) loses at most the uncommitted
transaction, as ``synchronous=NORMAL`` keeps commits durable against a process crash (a power cut
may lose the last commits, not consistency), which replaces the project's temp-file +
``os.replace`` rule for this file; least-recently-used eviction (a read refreshes its entries in
a short write of its own); fast point lookups at millions of entries. WAL needs shared memory
between the processes, so the folder must be on a local file system (not NFS).

Sizes: ``max_bytes`` bounds an estimate (``ENTRY_OVERHEAD`` plus the logits per entry, kept in a
totals row by triggers in the writes' own transactions); eviction cuts to ``LOW_WATER`` of the
bound, so it runs once per tenth of the capacity rather than on every write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from c2s_lightning.infra.cache_folders import COMPARISONS, cache_folder
from c2s_lightning.cache.database import CacheError, connect, totals, transaction
from c2s_lightning.cache.digests import DIGEST_SIZE, file_digest, pixel_digest, protocol_key

__all__ = ["CacheError", "CacheStats", "ComparisonCache", "ComparisonKey", "default_cache_dir",
           "file_digest", "pixel_digest", "protocol_key"]

DB_NAME = "comparisons.sqlite3"
DEFAULT_MAX_BYTES = 1 << 30
"""1 GiB: about 6 million comparisons of five float32 logits."""
ENTRY_OVERHEAD = 160
"""File bytes per entry besides its logits (keys, LRU index, B-tree cells and their slack):
10^5 entries of five float32 logits took 17.6 MB after a checkpoint, 156 + 20 bytes each."""
LOW_WATER = 0.9
_DTYPES = {"<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}
_WRITE_CHUNK = 4096  # rows per write transaction, so other writers get turns during a big put


class ComparisonKey(NamedTuple):
    """One comparison: model fingerprint, protocol key, digests of the first and second image."""

    fingerprint: str
    protocol: str
    first: str
    second: str


@dataclass(frozen=True)
class CacheStats:
    """What ``ComparisonCache.stats()`` reports: ``contexts`` lists ``(fingerprint, protocol key,
    entries)``; ``hits`` and ``misses`` count this object's lookups in this process."""

    path: Path
    entries: int
    bytes: int
    file_bytes: int
    max_bytes: int | None
    max_entries: int | None
    hits: int
    misses: int
    evicted: int
    contexts: list[tuple[str, str, int]] = field(default_factory=list)


def default_cache_dir() -> Path | None:
    """``<cache root>/comparisons`` (``cache_folders``); None when ``C2S_CACHE_DIR=off``."""
    return cache_folder(COMPARISONS)


class ComparisonCache:
    """Level logits of image pairs in a SQLite database; safe for several processes at once.

    Each thread of each process (a forked child too) opens its own connection, so one object serves
    several threads (a metric called from a thread pool), their writes ordered by SQLite's locks.

    Args:
        folder: Where the database lives (created if missing); default ``default_cache_dir()``
            (a ValueError when ``C2S_CACHE_DIR=off`` turned it off).
        max_bytes: Bound on the estimated size (None: unbounded); least recently used entries
            are evicted past it.
        max_entries: Bound on the number of entries (None: unbounded).
        timeout: Seconds a write waits for other writers before it fails.
    """

    def __init__(self, folder: str | os.PathLike | None = None, *, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 max_entries: int | None = None, timeout: float = 60.0):
        for name, bound in (("max_bytes", max_bytes), ("max_entries", max_entries)):
            if bound is not None and bound <= 0:
                raise ValueError(f"{name} must be positive or None, got {bound}")
        folder = default_cache_dir() if folder is None else folder
        if folder is None:
            raise ValueError("C2S_CACHE_DIR=off turns the default comparison cache off: give a folder")
        self.folder = Path(folder).expanduser()
        self.path = self.folder / DB_NAME
        self.max_bytes, self.max_entries, self.timeout = max_bytes, max_entries, timeout
        self.hits = self.misses = self.evicted = 0
        self._local = threading.local()  # this thread's (connection, pid)
        self._count_lock = threading.Lock()
        self._contexts: dict[tuple[str, str], bytes] = {}

    def get_many(self, keys: Iterable[ComparisonKey]) -> dict[ComparisonKey, np.ndarray]:
        """The cached logits of those ``keys`` that are present (a copy in native byte order); each
        key counts once as a hit or a miss, and hits become the most recently used."""
        keys = list(dict.fromkeys(keys))
        encoded = [self._encode(k) for k in keys]
        conn = self._connect()
        found: dict[ComparisonKey, np.ndarray] = {}
        with transaction(conn, "BEGIN"):  # one snapshot for the whole batch
            for key, row in zip(keys, encoded):
                hit = conn.execute("SELECT dtype, logits FROM comparisons WHERE context = ? AND first = ? "
                                   "AND second = ?", row).fetchone()
                if hit is not None:
                    found[key] = _decode_value(*hit)
        with self._count_lock:
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        if found:
            self._touch([row for key, row in zip(keys, encoded) if key in found])
        return found

    def put_many(self, items: Mapping[ComparisonKey, Any] | Iterable[tuple[ComparisonKey, Any]]) -> int:
        """Store logits (1-D float32 or float64, kept bit for bit); returns how many were new. A key
        already present keeps its logits (the first writer wins: every reader sees one value) and
        becomes the most recently used. A kill keeps whole write transactions, never part of one."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        rows = [(*self._encode(key), *_encode_value(key, value)) for key, value in pairs]
        contexts = {self._context(k[0], k[1]): (k[0], k[1]) for k, _ in pairs}
        conn = self._connect()
        new = 0
        for start in range(0, len(rows), _WRITE_CHUNK):
            with transaction(conn, "BEGIN IMMEDIATE"):
                before = totals(conn)[0]
                if start == 0:
                    conn.executemany("INSERT OR IGNORE INTO contexts VALUES (?, ?, ?)",
                                     [(c, fp, proto) for c, (fp, proto) in contexts.items()])
                now = time.time_ns()
                conn.executemany("INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
                                 "SET used = excluded.used",
                                 [(*row, now) for row in rows[start : start + _WRITE_CHUNK]])
                new += totals(conn)[0] - before
                self._evict(conn)
        return new

    def clear(self, fingerprint: str | None = None) -> int:
        """Remove every entry (or those of one model fingerprint); returns how many went. Clearing
        everything also gives the disk space back (VACUUM)."""
        conn = self._connect()
        with transaction(conn, "BEGIN IMMEDIATE"):
            before = totals(conn)[0]
            where, args = ("", ()) if fingerprint is None else (" WHERE fingerprint = ?", (fingerprint,))
            conn.execute(f"DELETE FROM comparisons WHERE context IN (SELECT context FROM contexts{where})", args)
            conn.execute(f"DELETE FROM contexts{where}", args)
            removed = before - totals(conn)[0]
        if fingerprint is None:  # when another process holds the file, the space is reused later
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def stats(self) -> CacheStats:
        """Entries, sizes, bounds, this object's counters, and per-model counts (which read the whole
        table: about a second per few million entries; a run logs ``CachingComparator.counts()``)."""
        conn = self._connect()
        with transaction(conn, "BEGIN"):
            entries, logit_bytes = totals(conn)
            contexts = conn.execute("SELECT c.fingerprint, c.protocol, COUNT(*) FROM comparisons m "
                                    "JOIN contexts c USING (context) GROUP BY m.context").fetchall()
        files = [self.path, self.path.with_name(DB_NAME + "-wal")]
        return CacheStats(self.path, entries, entries * ENTRY_OVERHEAD + logit_bytes,
                          sum(f.stat().st_size for f in files if f.exists()), self.max_bytes,
                          self.max_entries, self.hits, self.misses, self.evicted,
                          sorted(tuple(c) for c in contexts))

    def close(self) -> None:
        """Close this thread's connection (reopened on next use); other threads' close as they end."""
        if (conn := self._own_connection()) is not None:
            conn.close()
        self._local.conn = (None, -1)

    def __enter__(self) -> ComparisonCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _own_connection(self) -> sqlite3.Connection | None:
        # A connection crosses neither a fork nor a thread (sqlite3 refuses another thread's).
        conn, pid = getattr(self._local, "conn", (None, -1))
        return conn if pid == os.getpid() else None

    def _connect(self) -> sqlite3.Connection:
        if (conn := self._own_connection()) is None:
            conn = connect(self.path, self.timeout)
            self._local.conn = (conn, os.getpid())
        return conn

    def _context(self, fingerprint: str, protocol: str) -> bytes:
        if (fingerprint, protocol) not in self._contexts:
            for name, value in (("fingerprint", fingerprint), ("protocol", protocol)):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"a comparison key needs a non-empty {name} string, got {value!r}")
            text = f"{fingerprint}\0{protocol}".encode()
            self._contexts[(fingerprint, protocol)] = hashlib.blake2b(text, digest_size=DIGEST_SIZE).digest()
        return self._contexts[(fingerprint, protocol)]

    def _encode(self, key: ComparisonKey) -> tuple[bytes, bytes, bytes]:
        if not isinstance(key, tuple) or len(key) != 4:
            raise TypeError(f"a comparison key is ComparisonKey(fingerprint, protocol, first, second), got {key!r}")
        return (self._context(key[0], key[1]), _digest_bytes(key, key[2]), _digest_bytes(key, key[3]))

    def _touch(self, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        now = time.time_ns()
        with transaction(self._connect(), "BEGIN IMMEDIATE") as conn:
            conn.executemany("UPDATE comparisons SET used = ? WHERE context = ? AND first = ? AND second = ?",
                             [(now, *row) for row in rows])

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: drop the least recently used entries past a bound."""
        entries, logit_bytes = totals(conn)
        size = entries * ENTRY_OVERHEAD + logit_bytes
        keep = entries
        if self.max_entries is not None and entries > self.max_entries:
            keep = int(self.max_entries * LOW_WATER)
        if self.max_bytes is not None and size > self.max_bytes:
            keep = min(keep, int(self.max_bytes * LOW_WATER / (size / entries)))
        if keep < entries:
            conn.execute("DELETE FROM comparisons WHERE (context, first, second) IN (SELECT context, first, "
                         "second FROM comparisons ORDER BY used LIMIT ?)", (entries - keep,))
            self.evicted += entries - keep  # inside the write transaction: one thread at a time


def _digest_bytes(key: ComparisonKey, digest: str) -> bytes:
    try:
        raw = bytes.fromhex(digest)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != DIGEST_SIZE:
        raise ValueError(f"{key}: image digests are {2 * DIGEST_SIZE} hex characters "
                         f"(pixel_digest or file_digest), got {digest!r}")
    return raw


def _decode_value(code: str, blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_DTYPES[code]).astype(_DTYPES[code].newbyteorder("="))


def _encode_value(key: ComparisonKey, value: Any) -> tuple[str, bytes]:
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if array.ndim != 1 or array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise ValueError(f"{key}: logits must be a 1-D float32 or float64 vector, "
                         f"got shape {array.shape} dtype {array.dtype}")
    code = f"<f{array.dtype.itemsize}"
    return code, array.astype(_DTYPES[code], copy=False).tobytes()
