"""c2s_lightning: Compare2Score (NeurIPS 2024) as a PyTorch Lightning experiment framework."""

__version__ = "0.1.0"
