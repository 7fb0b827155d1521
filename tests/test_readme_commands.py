"""Every command the README shows parses as written (``--print_config``: nothing runs or downloads)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from c2s_lightning.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PLACEHOLDER = re.compile(r"^[A-Z_]+(\.\.\.)?$|\.\.\.|^X\.yaml$|^Y\.yaml$")


def fenced_lines() -> list[str]:
    """Lines of the README's ```bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def cli_commands() -> list[list[str]]:
    """Our commands in fenced blocks and inline code, without ones that hold placeholders."""
    inline = re.findall(r"`((?:python -m c2s_lightning|c2s-lightning) [^`]*)`", README)
    found = []
    for line in [*fenced_lines(), *inline]:
        words = shlex.split(line)
        if words[:3] == ["python", "-m", "c2s_lightning"]:
            args = words[3:]
        elif words[:1] == ["c2s-lightning"]:
            args = words[1:]
        else:
            continue
        if args and not any(PLACEHOLDER.search(w) or w in (">", "|") for w in args) and args not in found:
            found.append(args)
    return found


COMMANDS = cli_commands()


def test_the_readme_shows_the_first_hour_path():
    assert ". .venv/bin/activate" in fenced_lines() and "make quickstart" in fenced_lines()
    verbs = [c[0] for c in COMMANDS]
    assert {"score", "evaluate", "fit", "anchors", "sweep", "report"} <= set(verbs)
    assert 'c2s-lightning = "c2s_lightning.cli:main"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_each_readme_command_parses_as_written(args, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # as the README says: from the repository root
    if args == ["--help"]:
        assert main(args) is None and "score" in capsys.readouterr().out
        return
    if "bank.yaml" in args:  # the README makes it with the command before: `... --print_config > bank.yaml`
        with pytest.raises(SystemExit):
            main(["anchors", "build", "--checkpoint", "export", "--out", "bank.json", "--print_config"])
        (tmp_path / "bank.yaml").write_text(capsys.readouterr().out)
        args = [str(tmp_path / "bank.yaml") if a == "bank.yaml" else a for a in args]
    with pytest.raises(SystemExit) as done:
        main([*args, "--print_config"])
    assert done.value.code in (0, None), capsys.readouterr().err[-2000:]


def test_other_fenced_commands_name_files_that_exist():
    for line in fenced_lines():
        words = shlex.split(line)
        if words[0] == "make":
            assert re.search(rf"^{words[1]}:", (ROOT / "Makefile").read_text(), flags=re.M), line
        elif words[0] in ("bash", ".venv/bin/python"):
            assert (ROOT / words[1]).is_file(), line
