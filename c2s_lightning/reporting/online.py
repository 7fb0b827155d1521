"""Online W&B runs (``entity/project/run_id``), read through ``wandb.Api`` when a server is reachable.

Kept apart from the offline path: nothing else in the report needs a network or an account.
"""

from __future__ import annotations

import re
from pathlib import Path

from c2s_lightning.reporting.wandb_files import RunData

ONLINE_PATH = re.compile(r"[\w.-]+/[\w.-]+/[\w-]+")


def read_online_run(path: str) -> RunData:
    """Fetch one run's history, summary and config from the W&B server.

    Raises:
        RuntimeError: The run cannot be fetched (no server, no API key, no such run).
    """
    import wandb

    try:
        run = wandb.Api().run(path)
        history = [dict(row) for row in run.scan_history()]
        return RunData(path=Path(path), run_id=run.id, history=history,
                       summary=dict(run.summary_metrics), config=dict(run.config))
    except Exception as err:  # wandb raises many types (network, auth, CommError)
        raise RuntimeError(f"cannot read the online run {path!r}: {err}") from err
