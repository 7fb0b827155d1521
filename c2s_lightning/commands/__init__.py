"""Plain argparse tools behind ``python -m c2s_lightning`` (everything that is not LightningCLI)."""
