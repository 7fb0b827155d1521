"""Reports over runs (their CSV logs, or W&B online): tables in the paper's layout beside its
numbers, and plots. ``python -m c2s_lightning report RUNS...`` is the entry point (``commands/report.py``).
"""
