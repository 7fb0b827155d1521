"""The comparison-cache options the scoring commands share: ``--cache-dir`` and ``--no-cache``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_FOLDER = ("CACHE_ROOT/comparisons, CACHE_ROOT being $C2S_CACHE_DIR, else $XDG_CACHE_HOME/c2s_lightning, "
                  "else ~/.cache/c2s_lightning")

def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cache-dir DIR`` and ``--no-cache`` to a command's parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cache-dir", type=Path, default=None,
                       help=f"comparison cache folder (default: {DEFAULT_FOLDER}; C2S_CACHE_DIR=off: no cache); "
                            "comparisons made before by the same weights and protocol are read, not recomputed")
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the comparison cache")


def cache_setting(ns: argparse.Namespace) -> bool | Path:
    """``load_scorer``'s ``cache`` argument from the parsed options."""
    return False if ns.no_cache else (ns.cache_dir or True)


def report_cache(comparator: Any, command: str) -> None:
    """Print how many comparisons the run computed and how many the cache answered (if on)."""
    from c2s_lightning.cache.wiring import cache_counts

    counts = cache_counts(comparator)
    if counts is not None:
        print(f"{command}: comparisons computed {counts['computed']:,}, reused {counts['reused']:,} "
              f"(cache {comparator.cache.folder})", file=sys.stderr)
