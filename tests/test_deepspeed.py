"""DeepSpeed ready: each strategy file builds Lightning's DeepSpeedStrategy through the project's CLI,
and the network is built by ``configure_model`` inside the strategy's model-init contexts (where
ZeRO-3 partitions parameters as they are created), not in the module's constructor.

Nothing is trained: the CLI is run up to instantiation, then Lightning's own configure-model call
runs with the strategy's contexts replaced by recorders. The slow test enters the real contexts in a
1-process gloo group on the CPU: the data module is connected lazily (the model is not built before
the strategy's context), and ZeRO-3 partitions the parameters as transformers builds them (the module
keeps transformers' ``HfDeepSpeedConfig`` alive while it builds).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

pytest.importorskip("deepspeed", reason="the deepspeed extra is not installed")

from lightning.pytorch.cli import LightningCLI  # noqa: E402
from lightning.pytorch.strategies import DeepSpeedStrategy  # noqa: E402
from lightning.pytorch.trainer.call import _call_configure_model  # noqa: E402

import c2s_lightning.models.module as module_py  # noqa: E402
from c2s_lightning.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = sorted((ROOT / "experiments" / "strategies").glob("*.yaml"))


@pytest.mark.parametrize("strategy_file", STRATEGIES, ids=lambda p: p.stem)
def test_strategy_file_builds_deepspeed_and_the_model_is_created_in_its_init_context(
        strategy_file, tmp_path, monkeypatch):
    expected = yaml.safe_load(strategy_file.read_text())["trainer"]["strategy"]["init_args"]
    monkeypatch.setattr(LightningCLI, "_run_subcommand", lambda self, name: None)  # build, do not fit
    cli = main(["fit", "--config", str(ROOT / "experiments" / "quickstart.yaml"), "--config", str(strategy_file),
                "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path), "--checkpoint.dirpath", str(tmp_path / "ckpt")])
    strategy = cli.trainer.strategy
    assert isinstance(strategy, DeepSpeedStrategy)
    zero = strategy.config["zero_optimization"]
    assert zero["stage"] == expected["stage"] and strategy.zero_stage_3 == (expected["stage"] == 3)
    assert ("offload_param" in zero) == bool(expected.get("offload_parameters"))
    assert ("offload_optimizer" in zero) == bool(expected.get("offload_optimizer"))
    assert cli.model.net is None, "the constructor must not build the network (ZeRO-3 could not partition it)"

    active: set[str] = set()
    seen_by_builder: list[set[str]] = []

    def recorder(name):
        @contextmanager
        def context(*args, **kwargs):
            active.add(name)
            try:
                yield
            finally:
                active.discard(name)
        return context

    real_build = module_py.build_backbone

    def recording_build(*args, **kwargs):
        seen_by_builder.append(set(active))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(strategy, "model_sharded_context", recorder("model_sharded"))
    monkeypatch.setattr(strategy, "tensor_init_context", recorder("tensor_init"))
    monkeypatch.setattr(module_py, "build_backbone", recording_build)
    strategy.connect(cli.model)
    _call_configure_model(cli.trainer)  # what Trainer.fit does before the strategy's setup
    assert seen_by_builder == [{"model_sharded", "tensor_init"}]
    assert cli.model.net is not None and not active


def _configure_under_real_contexts(rank: int, world: int, tmp: str) -> dict[str, str]:
    """In a 1-process gloo group: each strategy file's real model-init contexts around configure_model."""
    import os

    from c2s_lightning.data.synth import write_synthetic_kadid
    from test_cli import override

    os.environ.update(LOCAL_RANK="0", RANK="0", WORLD_SIZE="1")  # what DeepSpeed's Init reads
    synth = write_synthetic_kadid(Path(tmp) / "kadid", size=32)
    outcome = {}
    for strategy_file in STRATEGIES:
        try:
            cli = _built_cli(strategy_file, Path(tmp) / strategy_file.stem, override(Path(tmp) / "cfg", synth))
            cli.connect_data()  # the launcher's before_fit hook: nothing is built yet
            cli.trainer._data_connector.attach_data(cli.model, datamodule=cli.datamodule)  # as fit() does
            cli.trainer.strategy.connect(cli.model)
            _call_configure_model(cli.trainer)
            partitioned = all(hasattr(p, "ds_id") for p in cli.model.net.parameters())
            outcome[strategy_file.stem] = "partitioned" if partitioned else "built"
        except Exception as err:  # reported to the parent, one line per file
            outcome[strategy_file.stem] = f"{type(err).__name__}: {err}".splitlines()[0]
    return outcome


def _built_cli(strategy_file: Path, out: Path, *configs: str):
    import lightning.pytorch.cli as lightning_cli

    run = lightning_cli.LightningCLI._run_subcommand
    lightning_cli.LightningCLI._run_subcommand = lambda self, name: None
    try:
        return main(["fit", "--config", str(ROOT / "experiments" / "quickstart.yaml"), "--config", str(strategy_file),
                     *[a for c in configs for a in ("--config", c)], "--trainer.accelerator", "cpu",
                     "--trainer.devices", "1", "--trainer.logger", "false", "--trainer.default_root_dir", str(out)])
    finally:
        lightning_cli.LightningCLI._run_subcommand = run


@pytest.mark.slow
def test_real_deepspeed_contexts_build_and_zero3_partitions(tmp_path):
    from gloo_group import run_on_ranks

    [outcome] = run_on_ranks(_configure_under_real_contexts, 1, tmp_path, str(tmp_path))
    assert outcome == {"deepspeed_zero2": "built", "deepspeed_zero3": "partitioned",
                       "deepspeed_zero3_offload": "partitioned"}
