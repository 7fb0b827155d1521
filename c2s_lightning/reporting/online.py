"""Online W&B runs (``entity/project/run_id``) through ``wandb.Api``; kept apart from the offline
path, since nothing else in the report needs a network or an account."""

from __future__ import annotations

import math
import re
from typing import Any

ONLINE_PATH = re.compile(r"[\w.-]+/[\w.-]+/[\w-]+")


def read_online_run(path: str) -> tuple[str, dict[str, Any], dict[str, float], str]:
    """One run's id, config, last metric values (its summary) and state (``finished``, ``failed``,
    ``crashed``, ``running``) from the W&B server; a ValueError when it cannot be fetched."""
    import wandb

    try:
        run = wandb.Api().run(path)
        metrics = {k: float(v) for k, v in dict(run.summary_metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        return run.id, dict(run.config), metrics, str(run.state)
    except Exception as err:  # wandb raises many types (network, auth, CommError)
        raise ValueError(f"{path}: no such local folder, and not readable as an online W&B run ({err})") from err
