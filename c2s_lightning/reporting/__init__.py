"""Reports over W&B runs: tables in the paper's layout beside its numbers, and plots.

``python -m c2s_lightning report RUNS...`` is the entry point (``c2s_lightning.commands.report``).
"""
