"""The tool commands behind ``python -m c2s_lightning`` (everything that is not LightningCLI); their
arguments go through jsonargparse (``parsing.py``), as training's do through LightningCLI."""
