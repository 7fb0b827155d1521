"""YAML with a bound on alias expansion (why: ``docs/safety.md``): every YAML read goes through here.

PyYAML builds an alias bomb as a small shared graph; the blow-up comes when a consumer walks it as
a tree (jsonargparse making a namespace, a sweep copying values). So the composed graph is measured
before anything is built from it: the nodes aliases add (counted as often as a tree walk visits
them) may be at most ``MAX_ALIAS_NODES``, and a node may not contain itself. Sweep files load
through ``safe_load``; ``--config`` files through jsonargparse's loaders (``bound_config_loaders``).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIAS_NODES = 100_000
"""Nodes that alias expansion may add to a document (a hand-written config adds tens)."""


class AliasBombError(yaml.YAMLError):
    """A document whose aliases expand past ``MAX_ALIAS_NODES``, or refer to themselves."""


def check_alias_expansion(root: yaml.Node | None, limit: int = MAX_ALIAS_NODES) -> None:
    """Refuse a composed document that a tree walk would blow up; linear in the size of the graph
    (each distinct node's expanded size is computed once)."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    unique = 0

    def expanded(node: yaml.Node, open_nodes: set[int]) -> int:
        nonlocal unique
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise AliasBombError(f"a recursive alias at line {node.start_mark.line + 1}: a node contains itself")
        unique += 1
        if isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        open_nodes.add(key)
        total = 1 + sum(expanded(child, open_nodes) for child in children)
        open_nodes.discard(key)
        if total - unique > limit:
            raise AliasBombError(f"aliases expand it past {limit:,} added nodes (a YAML alias bomb?); "
                                 "write the repeated blocks out, or use fewer nested aliases")
        sizes[key] = total
        return total

    expanded(root, set())


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the alias bound (``yaml.YAMLError``: invalid, or ``AliasBombError``)."""
    check_text(text)
    return yaml.safe_load(text)


def check_text(text: Any) -> None:
    """Compose ``text`` (nothing is constructed) and check its alias expansion; a text that is
    not YAML is left to the real loader, which reports it in its own words."""
    if not isinstance(text, str) or "*" not in text:  # no alias: nothing to expand
        return
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()
    check_alias_expansion(root)


def bound_config_loaders() -> None:
    """Put the alias bound in front of jsonargparse's YAML loaders (its ``yaml`` mode, which the
    tools use, and ``omegaconf+``, which LightningCLI uses). Idempotent."""
    from jsonargparse import get_loader, set_loader

    for mode in ("yaml", "omegaconf+"):
        try:
            original = get_loader(mode)
        except KeyError:  # omegaconf's loaders are made on first use: make it now to wrap it
            from jsonargparse._loaders_dumpers import set_omegaconf_loader  # noqa: PLC0415 (no public way)

            set_omegaconf_loader(mode)
            original = get_loader(mode)
        if getattr(original, "alias_bound", False):
            continue

        def bounded(value, _original=original):
            check_text(value)
            return _original(value)

        bounded.alias_bound = True
        set_loader(mode, bounded, (yaml.YAMLError,))
