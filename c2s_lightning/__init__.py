"""c2s_lightning: Compare2Score (NeurIPS 2024) as a PyTorch Lightning experiment framework."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # imported on first use: the scorer pulls in transformers
    if name == "score_images":
        from c2s_lightning.scoring.api import score_images

        return score_images
    raise AttributeError(f"module 'c2s_lightning' has no attribute {name!r}")
