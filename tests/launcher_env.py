"""The variables Lightning's launchers export into the process that launches (``MASTER_ADDR`` ...).

A subprocess that inherits ``LOCAL_RANK`` takes itself for a rank started from outside (torchrun,
SLURM) and spawns no other rank: tests that start ``--devices 2`` commands drop these first, and
``conftest.py`` restores them after every test.
"""

LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK", "RANK", "WORLD_SIZE")


def without_launcher_env(environ) -> dict:
    """``environ`` as a dict, less the launcher's variables."""
    return {k: v for k, v in environ.items() if k not in LAUNCHER_ENV}
