"""Compare2ScoreModule: the optional rating loss, and what a training step changes."""

import lightning as L
import pytest
import torch

from c2s_lightning.data import LEVELS
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.data.pairs import level_histogram
from c2s_lightning.data.synth import write_synthetic_kadid
from c2s_lightning.models.module import Compare2ScoreModule

# _step called outside a Trainer: self.log has nowhere to go, which is fine here
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log")

CONTENTS = ["astronaut", "camera", "coffee", "chelsea"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return write_synthetic_kadid(tmp_path_factory.mktemp("synth") / "kadid", size=16, contents=CONTENTS)


def datamodule(root, **kw):
    spec = MixEntry(name="kadid10k", root=str(root), pairs=kw.pop("pairs", 20), split="random",
                    split_options={"test_refs": ["I04"]})
    return ComparisonDataModule([spec], batch_size=kw.pop("batch_size", 10), val_pairs=0, **kw)


def module(**kw) -> Compare2ScoreModule:
    m = Compare2ScoreModule(model="tiny-llava", lr=1e-2, warmup_ratio=0.0, **kw)
    m.configure_model()
    return m


def first_batch(m, dm):
    dm.connect(m.backbone.encoder)
    dm.setup()
    return next(iter(dm.train_dataloader()))


def test_rating_loss_is_off_by_default_and_settings_must_agree(synth_root):
    m = module()
    assert m.hparams.rating_loss_weight == 0.0
    plain = first_batch(m, datamodule(synth_root))
    assert "rating" not in plain
    assert torch.isfinite(m._step(plain, "train"))
    with pytest.raises(ValueError, match="rating_images_per_pair"):
        m._step(first_batch(m, datamodule(synth_root, rating_images_per_pair=1)), "train")
    with pytest.raises(ValueError, match="rating_images_per_pair"):
        module(rating_loss_weight=0.5)._step(plain, "train")
    with pytest.raises(ValueError, match=">= 0"):
        Compare2ScoreModule(rating_loss_weight=-1.0)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        datamodule(synth_root, rating_images_per_pair=3)


@pytest.mark.parametrize("per_pair", [1, 2])
def test_combined_loss_is_pair_loss_plus_weighted_rating_loss(synth_root, per_pair):
    m = module(rating_loss_weight=0.3)
    batch = first_batch(m, datamodule(synth_root, rating_images_per_pair=per_pair))
    assert batch["rating"]["levels"].numel() == per_pair * batch["levels"].numel()
    with torch.no_grad():
        total = m._step(batch, "train")
        pair_loss, _ = m._answer_loss(batch, m.backbone.level_token_ids)
        rating_loss, _ = m._answer_loss(batch["rating"], m.backbone.rating_token_ids)
    assert rating_loss > 0 and not torch.isclose(rating_loss, pair_loss)
    torch.testing.assert_close(total, pair_loss + 0.3 * rating_loss)


def test_balanced_sampling_gives_equal_level_counts(synth_root):
    dm = datamodule(synth_root, pairs=100, balance_levels=True)
    assert level_histogram(dm.mix.train_pairs(0))["kadid10k"] == {lvl: 20 for lvl in LEVELS}


def test_training_step_changes_trained_params_only(synth_root):
    m = Compare2ScoreModule(model="tiny-llava", lr=1e-2, warmup_ratio=0.0, train_vision=False,
                            rating_loss_weight=0.5)
    m.configure_model()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    def trainer():
        return L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)

    dm = datamodule(synth_root, rating_images_per_pair=1)
    with pytest.raises(RuntimeError, match="connect"):  # the model never connects the data itself
        trainer().fit(m, datamodule=dm)
    assert all(torch.equal(before[n], p) for n, p in m.named_parameters())
    dm.connect(m)  # what the CLI's before_fit does
    trainer = trainer()
    trainer.fit(m, datamodule=dm)
    after = dict(m.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    trained = {n for n, p in after.items() if p.requires_grad}
    assert any("vision_tower" in n for n in before) and not any("vision_tower" in n for n in trained)
    assert changed and changed <= trained
    assert any("language_model" in n for n in changed) and any("multi_modal_projector" in n for n in changed)
    assert "train/rating_loss" in trainer.callback_metrics and "train/loss" in trainer.callback_metrics


def test_the_cli_connects_the_unbuilt_model_and_loaders_bind_its_encoder(synth_root):
    from types import SimpleNamespace

    from c2s_lightning.training.lightning_cli import Compare2ScoreCLI

    m, dm = Compare2ScoreModule(model="tiny-llava"), datamodule(synth_root)
    Compare2ScoreCLI.connect_data(SimpleNamespace(model=m, datamodule=dm))
    # built later by Lightning, inside the strategy's context (DeepSpeed ZeRO-3 partitions it as created)
    assert m.net is None and m.backbone is None
    with pytest.raises(RuntimeError, match="not built yet"):
        dm.train_dataloader()
    m.configure_model()
    loader = dm.train_dataloader()
    encode = loader.collate_fn.keywords["encode"]
    assert encode.__self__ is m.backbone.encoder  # worker processes get the processor, not the weights
    assert next(iter(loader))["levels"].numel() == 10


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_gradient_checkpointing_configures_without_deprecation_warnings(finetune):
    """base.yaml turns checkpointing on for every real run: the pinned transformers warns on its old
    method names (ours and the one peft reads), which no user of this project can act on."""
    import warnings

    m = Compare2ScoreModule(model="tiny-llava", finetune=finetune, gradient_checkpointing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        m.configure_model()
    layers = [mod for mod in m.net.modules() if getattr(mod, "gradient_checkpointing", False)]
    assert layers, "checkpointing is on in the decoder layers"
