"""Fast, exact help and errors: `--help` without the heavy imports, `fit --help` kept once rendered,
no abbreviated options, a closed pipe ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from c2s_lightning.cli import main
from c2s_lightning.infra import help_cache

HEAVY = ("torch", "lightning", "transformers")


@pytest.fixture
def help_env(tmp_path, monkeypatch):
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "100")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_fit_help_is_kept_and_equals_a_fresh_rendering(help_env, capsys, monkeypatch):
    main(["fit", "--help"])  # printed from the text LightningCLI renders, which is then kept
    first = capsys.readouterr().out
    assert "--trainer.max_steps" in first and "--data.datasets" in first
    [kept] = help_cache.cache_folder("help").iterdir()
    assert kept.read_text() == first
    monkeypatch.setattr(help_cache, "write_text", lambda *a: pytest.fail("rendered and kept again"))
    main(["fit", "--help"])
    assert capsys.readouterr().out == first
    monkeypatch.setenv("C2S_CACHE_DIR", "off")  # the caches off: rendered afresh, the same text
    main(["fit", "--help"])
    assert capsys.readouterr().out == first


def test_the_key_follows_the_terminal_width_and_the_sources(monkeypatch, tmp_path):
    key = help_cache.help_key(["fit", "--help"])
    monkeypatch.setenv("COLUMNS", "133")
    assert help_cache.help_key(["fit", "--help"]) != key
    assert help_cache.help_key(["validate", "--help"]) != help_cache.help_key(["fit", "--help"])
    source = tmp_path / "pkg"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(help_cache, "PACKAGE", source)
    before = help_cache.help_key(["fit", "--help"])
    os.utime(source / "sub" / "a.py", ns=(1, 10**18))
    assert help_cache.help_key(["fit", "--help"]) != before


def test_help_imports_nothing_heavy_and_a_closed_pipe_ends_quietly(help_env):
    main(["fit", "--help"])  # kept in this test's cache, which the subprocesses share
    probe = ("import sys\nfrom c2s_lightning.cli import main\n"
             "for command in ('score', 'sweep', 'anchors', 'fit'):\n"
             "    try:\n        main([command, '--help'])\n    except SystemExit:\n        pass\n"
             f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], env=help_env, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]
    assert "usage: python -m c2s_lightning score" in done.stdout and "--trainer.max_steps" in done.stdout
    # the reader went away before the help was written (`fit --help | head`): no traceback, SIGPIPE's status
    reader_gone = subprocess.Popen([sys.executable, "-m", "c2s_lightning", "fit", "--help"], env=help_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()
    err = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=120) == 141 and err == ""


@pytest.mark.parametrize("args, meant", [
    (["score", "a.png", "--checkpoint", "x", "--readof", "raw"], "--readoff"),
    (["sweep", "s.yaml", "--dry"], "--dry-run"),
])
def test_an_abbreviated_option_is_an_error_with_a_suggestion(args, meant, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {args[-2] if args[-1] == 'raw' else args[-1]}" in err
    assert f"did you mean '{meant}'?" in err


def test_lightning_options_are_not_abbreviated_either(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--seed_every", "1", "--print_config"])
    assert exit_.value.code == 2
    assert "did you mean '--seed_everything'?" in capsys.readouterr().err
