"""``python -m c2s_lightning cache stats|clear``: look at or empty the persistent comparison cache
(the level logits of image pairs already compared under a model and protocol: ``cache/store.py``).
Clearing only ever costs recomputation.
"""

from __future__ import annotations

from pathlib import Path

from c2s_lightning.commands.cache_options import DEFAULT_FOLDER
from c2s_lightning.infra.arguments import add_actions, parse_tool, tool_parser


def _parser():
    parser = tool_parser("cache", __doc__)
    actions = {}
    for name, text in (("stats", "entries, size, bounds and entries per model of the cache"),
                       ("clear", "remove the cache's entries (all, or one model's)")):
        action = actions[name] = tool_parser(f"cache {name}", text)
        action.add_argument("--dir", type=Path, default=None, help=f"cache folder (default: {DEFAULT_FOLDER})")
        if name == "clear":
            action.add_argument("--fingerprint", default=None, help="remove only this weights fingerprint's entries")
    add_actions(parser, {name: (action.description, action) for name, action in actions.items()})
    return parser


def format_stats(stats) -> str:
    """The text ``cache stats`` prints for a ``CacheStats``."""
    bound = ", ".join(f"{name} {value:,}" for name, value in
                      (("max_bytes", stats.max_bytes), ("max_entries", stats.max_entries)) if value) or "none"
    lines = [f"cache       {stats.path}",
             f"entries     {stats.entries:,}",
             f"size        {stats.bytes / 2**20:.1f} MiB estimated, {stats.file_bytes / 2**20:.1f} MiB on disk",
             f"bounds      {bound} (defaults of this command; each run sets its own)"]
    for fingerprint, protocol, entries in stats.contexts:
        lines.append(f"  {entries:>10,}  weights {fingerprint}  protocol {protocol}")
    return "\n".join(lines)


def main(args: list[str]) -> int:
    ns = parse_tool(_parser(), args)
    from c2s_lightning.cache.store import ComparisonCache

    with ComparisonCache(ns.dir) as cache:
        if ns.action == "stats":
            print(format_stats(cache.stats()))
        else:
            removed = cache.clear(fingerprint=ns.fingerprint)
            which = f" of weights {ns.fingerprint}" if ns.fingerprint else ""
            print(f"removed {removed:,} comparisons{which} from {cache.path}")
    return 0
