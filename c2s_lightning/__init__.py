"""c2s_lightning: Compare2Score (NeurIPS 2024) as a PyTorch Lightning experiment framework."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # imported on first use: the scorer pulls in transformers
    if name == "score_images":
        from c2s_lightning.scoring.api import score_images

        return score_images
    if name == "create_metric":
        from c2s_lightning.scoring.metric import create_metric

        return create_metric
    if name in ("list_backbones", "list_datasets"):
        from c2s_lightning import registries

        return getattr(registries, name)
    raise AttributeError(f"module 'c2s_lightning' has no attribute {name!r}")
