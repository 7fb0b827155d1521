"""c2s_lightning: Compare2Score (NeurIPS 2024) as a PyTorch Lightning experiment framework."""

__version__ = "0.1.0"

_PUBLIC = ("create_metric", "score_images", "list_models", "list_backbones", "list_datasets")


def __getattr__(name: str):
    # imported on first use: the scorer pulls in transformers
    if name in _PUBLIC:
        from c2s_lightning import api

        return getattr(api, name)
    raise AttributeError(f"module 'c2s_lightning' has no attribute {name!r}")
