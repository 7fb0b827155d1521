"""Every command the README and the docs/ pages show parses as written (``--print_config``: nothing
runs or downloads); the README stays a short guide whose links lead somewhere.

The command list is tests/readme_walk.py's, which runs the same commands on a fresh clone (slow):
placeholders are skipped by both, and commands marked ``# needs ...`` (a GPU, a download) are only
parse-checked by both.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from c2s_lightning.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import readme_walk as walk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PLAN = walk.plan(walk.documented_commands(ROOT))
OURS = [(kind, c) for kind, c in PLAN if kind in ("run", "check") and c.ours]
TRAINING = ("fit", "validate", "test")


def args_of(command: walk.Command) -> list[str]:
    words = command.words()
    return words[3:] if words[1:3] == ["-m", "c2s_lightning"] else words[1:]


# file name -> the README command (without `> file`) that writes it
WRITERS = {args_of(c)[args_of(c).index(">") + 1]: args_of(c)[:args_of(c).index(">")]
           for _, c in OURS if ">" in args_of(c)}


def test_the_readme_shows_the_first_hour_path():
    fenced = [c.text for kind, c in PLAN if not c.inline and c.source == "README.md"]
    assert ". .venv/bin/activate" in fenced and "make quickstart" in fenced
    shown = {args_of(c)[0] for kind, c in OURS if kind == "run" and c.source == "README.md"}
    assert {"score", "evaluate", "fit", "data", "sweep", "report"} <= shown
    assert 'c2s-lightning = "c2s_lightning.cli:main"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("kind,command", OURS, ids=[f"{k}:{c.source[:-3]}:{c.text[24:84]}" for k, c in OURS])
def test_each_readme_command_parses_as_written(kind, command, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # as the README says: from the repository root
    args = args_of(command)
    if args == ["--help"]:
        assert main(args) is None and "score" in capsys.readouterr().out
        return
    if ">" in args:  # `... --print_config > bank.yaml`: the command itself, without the redirection
        args = args[:args.index(">")]
    for name, writer in WRITERS.items():
        if name in args:  # a file an earlier README command writes with `> name`: write it here
            with pytest.raises(SystemExit):
                main(writer)
            (tmp_path / name).write_text(capsys.readouterr().out)
            args = [str(tmp_path / name) if a == name else a for a in args]
    with pytest.raises(SystemExit) as done:
        main(args if "--print_config" in args else [*args, "--print_config"])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err[-2000:]
    if kind == "run" and args[0] in TRAINING:  # unmarked training runs as written on a CPU-only machine
        config = yaml.safe_load(out)
        assert config["model"]["model"].startswith("tiny-"), f"{command.where}: mark it '# needs ...'"
        assert config["trainer"]["accelerator"] == "cpu", f"{command.where}: mark it '# needs ...'"


def test_readme_markings_are_uniform():
    """A trailing comment that says 'needs' is the marker, so the walker checks that command only."""
    for kind, command in PLAN:
        if re.search(r"\bneeds?\b", command.comment):
            assert kind in ("check", "again") and command.comment.startswith("# needs "), (command.where, command.comment)
        if kind == "run":
            assert not re.search(r"\bgpu\b|deepspeed|7b|download", command.text, flags=re.I), command.where


def test_other_fenced_commands_name_files_that_exist():
    for kind, command in PLAN:
        words = command.words()
        if kind == "syntax" or command.ours:
            continue
        if words[0] == "make":
            assert re.search(rf"^{words[1]}:", (ROOT / "Makefile").read_text(), flags=re.M), command.text
        elif words[0] in ("bash", ".venv/bin/python"):
            assert (ROOT / words[1]).is_file(), command.text


def test_the_walker_reads_commands_as_the_readme_writes_them():
    readme = """Intro `python -m c2s_lightning score a.png --out s.csv` and `c2s-lightning X`.

```bash
make quickstart   # the main job
# a comment line
python -m c2s_lightning fit --config a.yaml \\
    --config b.yaml  # needs a GPU
python -m c2s_lightning anchors build --export EXPORT --print_config > bank.yaml
python -m c2s_lightning anchors build --config bank.yaml
python -m c2s_lightning sweep s.yaml  # needs GPUs
hf download org/model  # needs the internet
make quickstart
```

Then `python -m
c2s_lightning data inspect koniq10k data/koniq10k` checks it.
"""
    planned = [(kind, c.text, c.line) for kind, c in walk.plan(walk.readme_commands(readme))]
    assert planned == [
        ("run", "python -m c2s_lightning score a.png --out s.csv", 1),
        ("syntax", "c2s-lightning X", 1),
        ("run", "make quickstart", 4),
        ("check", "python -m c2s_lightning fit --config a.yaml --config b.yaml", 6),
        ("syntax", "python -m c2s_lightning anchors build --export EXPORT --print_config > bank.yaml", 8),
        ("syntax", "python -m c2s_lightning anchors build --config bank.yaml", 9),
        ("check", "python -m c2s_lightning sweep s.yaml", 10),
        ("check", "hf download org/model", 11),
        ("again", "make quickstart", 12),
        ("run", "python -m c2s_lightning data inspect koniq10k data/koniq10k", 15),
    ]
    checks = [c.check_text() for kind, c in walk.plan(walk.readme_commands(readme)) if kind == "check"]
    assert checks == ["python -m c2s_lightning fit --config a.yaml --config b.yaml --print_config",
                      "python -m c2s_lightning sweep s.yaml --dry-run", "hf download org/model --help"]


def test_docs_pages_are_read_after_the_readme_in_name_order(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("```bash\nmake quickstart\n```\n")
    (tmp_path / "docs" / "b.md").write_text("Run `python -m c2s_lightning score a.png`.\n")
    (tmp_path / "docs" / "a.md").write_text("x\n\n```bash\nmake quickstart  # again\nmake test\n```\n")
    found = [(c.where, c.text) for c in walk.documented_commands(tmp_path)]
    assert found == [("README.md line 2", "make quickstart"), ("docs/a.md line 4", "make quickstart"),
                     ("docs/a.md line 5", "make test"), ("docs/b.md line 1", "python -m c2s_lightning score a.png")]
    assert [kind for kind, _ in walk.plan(walk.documented_commands(tmp_path))] == ["run", "again", "run", "run"]


README_LINES = 450  # issue 24: a guide a newcomer reads in 15 minutes; the rest lives in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"```.*?```", flags=re.S)


def anchors_of(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces as -."""
    headings = re.findall(r"^#+ (.+)$", FENCED.sub("", markdown), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_a_short_guide_and_every_link_leads_somewhere():
    assert len(README.splitlines()) <= README_LINES
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1
    linked = set()
    for page in pages:
        text = page.read_text()
        for target in LINK.findall(FENCED.sub("", text)):
            if re.match(r"[a-z]+://", target):
                continue
            name, _, anchor = target.partition("#")
            goal = (page.parent / name).resolve() if name else page
            assert goal.exists(), f"{page.relative_to(ROOT)}: the link {target} leads nowhere"
            linked.add(goal)
            if anchor and goal.suffix == ".md":
                assert anchor in anchors_of(goal.read_text()), f"{page.relative_to(ROOT)}: no heading for {target}"
    assert set(pages[1:]) <= linked, "a docs/ page no page links to"


CITED = re.compile(r"`(?:tests/)?(test_\w+\.py)?(?:::(test_\w+))?`")


def test_every_test_a_page_cites_exists():
    """docs/guarantees.md names the test of each guarantee (`test_x.py::test_y`, then `::test_z` of
    the same file): each must be a test of that file, or the guarantee has lost its check."""
    cited = 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        current = None
        for match in CITED.finditer(page.read_text()):
            name, test = match.groups()
            current = name or current
            if not (name or test):
                continue
            files = list((ROOT / "tests").rglob(current))
            assert files, f"{page.name}: no test file {current}"
            if test:
                cited += 1
                assert re.search(rf"^\s*def {test}\(", files[0].read_text(), flags=re.M), f"{page.name}: {current}::{test}"
    assert cited > 50
