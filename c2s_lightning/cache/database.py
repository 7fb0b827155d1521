"""The comparison cache's SQLite file: schema, connection settings, transactions (why SQLite in
WAL mode: ``store.py``), so the cache itself reads as keys, values and eviction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the file; another value is refused with a clear error."""

# ``contexts`` maps the 16-byte hash of (fingerprint, protocol) back to them, for stats and
# clearing one model; ``totals`` is kept by triggers inside each writing transaction, so the
# size bound never needs a full count of a table of millions of rows.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS contexts (context BLOB PRIMARY KEY, fingerprint TEXT NOT NULL, "
    "protocol TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS comparisons (context BLOB NOT NULL, first BLOB NOT NULL, "
    "second BLOB NOT NULL, dtype TEXT NOT NULL, logits BLOB NOT NULL, used INTEGER NOT NULL, "
    "PRIMARY KEY (context, first, second)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS comparisons_used ON comparisons (used)",
    "CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), "
    "entries INTEGER NOT NULL, logit_bytes INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO totals VALUES (0, 0, 0)",
    "CREATE TRIGGER IF NOT EXISTS count_insert AFTER INSERT ON comparisons BEGIN UPDATE totals SET "
    "entries = entries + 1, logit_bytes = logit_bytes + length(NEW.logits); END",
    "CREATE TRIGGER IF NOT EXISTS count_delete AFTER DELETE ON comparisons BEGIN UPDATE totals SET "
    "entries = entries - 1, logit_bytes = logit_bytes - length(OLD.logits); END",
)


class CacheError(RuntimeError):
    """A cache file that cannot be used (another schema, not a database); names the file."""


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """Open (creating if needed) the cache database at ``path`` in WAL mode, in autocommit mode
    (every batch runs in an explicit ``transaction``); ``timeout`` is SQLite's busy timeout.

    Raises:
        CacheError: the file is not a database, or one of another schema version.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # stored in the file: set once, kept
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL commits survive a process kill without fsync
            _ensure_schema(conn, path)
            return conn
        except sqlite3.DatabaseError as err:
            conn.close()
            # Two first openers of a new file: switching it to WAL can fail at once with "locked"
            # (SQLite does not wait on a lock it might deadlock on), so the setup is retried.
            locked = isinstance(err, sqlite3.OperationalError) and "locked" in str(err)
            if not locked or time.monotonic() > deadline:
                raise CacheError(f"{path}: not a usable comparison cache ({err}); delete the file "
                                 "(it only holds recomputable comparisons)") from err
            time.sleep(0.05)
        except CacheError:
            conn.close()
            raise


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
    """One transaction: committed at the end of the block, rolled back on an exception. Writes
    use ``begin="BEGIN IMMEDIATE"``: the write lock up front, so two writers never deadlock
    upgrading read locks."""
    conn.execute(begin)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(entries, bytes of all stored logits)`` as the triggers keep them."""
    return conn.execute("SELECT entries, logit_bytes FROM totals").fetchone()


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    with transaction(conn, "BEGIN IMMEDIATE"):  # two first openers: the second waits, then sees it
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise CacheError(f"{path}: cache schema version {version}, this code reads {SCHEMA_VERSION}; "
                             "delete the file (it only holds recomputable comparisons)")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
