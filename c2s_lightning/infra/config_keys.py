"""Dotted config keys (``evaluator.beta``): how the CLI logs its resolved config and how sweep
files and reports name settings. Shared by training and reporting, so neither imports the other."""

from __future__ import annotations

from typing import Any


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config to dotted keys (an empty mapping stays a value)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat
