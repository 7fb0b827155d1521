"""Run every command of the README and the docs/ pages as written, in order, on a fresh clone of HEAD.

    .venv/bin/python tests/readme_walk.py [--venv .venv | --install] [--only REGEX] [--keep]

The clone goes to a new temporary folder. By default the existing ``.venv`` is linked into it (the
README's set-up, ``make quickstart``'s install step, takes minutes); ``--install`` links nothing, so
the README's first ``make`` creates ``.venv`` as on a new machine. The user's own files that the
commands name (``my_photos/``, ``photo.png``, ``data/my_list/labels.csv``, ``data/koniq10k``) are
made first (tests/readme_user_files.py). Each command then runs with bash from the clone's root,
``.venv/bin`` first on PATH as after ``. .venv/bin/activate``, each with a timeout; the walk sets
only the environment of a new machine (no comparison or image-check cache, W&B offline, no hub).

Which commands: the lines of the ```bash blocks (continuation lines joined) and inline code that
starts with ``python -m c2s_lightning`` or ``c2s-lightning``, first of README.md, then of each
``docs/*.md`` page in name order (a page's commands may use what the README made). A command

- that holds a placeholder (``X.yaml``, ``EXPORT``, ``DIR``, ``...``) is syntax: skipped, and so is a
  command that reads a file only such a command writes (``... > bank.yaml``);
- whose comment starts with ``# needs`` (a GPU, a download) is checked only: our commands with
  ``--print_config`` (``sweep`` with ``--dry-run``), any other program with ``--help``;
- that was already run (the same text) runs once;
- everything else runs exactly as written.

Prints one line per command (status, seconds, command), then
``readme_walk: N ran, M passed, K checked only (...)``; exits 1 if any command failed, after printing
the tail of its output. Lives in tests/ (not benchmarks/, whose scripts measure speed) beside the
fixtures it uses; tests/test_readme_walk.py runs it (slow) and tests/test_readme_commands.py
parse-checks the same command list quickly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run as a script: the fixtures and the package of this tree
PLACEHOLDER = re.compile(r"^[A-Z_]+(\.\.\.)?$|\.\.\.|^X\.yaml$|^Y\.yaml$")
NEEDS = re.compile(r"^#\s*needs\b")
OURS = re.compile(r"^(?:\S*python\S* -m c2s_lightning|\S*c2s-lightning)(?: |$)")
INLINE = re.compile(r"`((?:python\s+-m\s+c2s_lightning|c2s-lightning)\s[^`]*)`")
FENCE = re.compile(r"```bash\n(.*?)```", flags=re.S)
TAIL_LINES = 40


@dataclasses.dataclass
class Command:
    """One README command: its text as written (continuations joined, comment apart) and where it is."""

    text: str
    line: int
    comment: str = ""
    inline: bool = False
    source: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"

    @property
    def needs(self) -> bool:
        """Marked in the README as needing what a CPU-only machine lacks (``# needs ...``)."""
        return bool(NEEDS.match(self.comment))

    @property
    def ours(self) -> bool:
        return bool(OURS.match(self.text))

    def words(self) -> list[str]:
        return shlex.split(self.text)

    def check_text(self) -> str:
        """The command run in place of a marked one: a parse check that needs nothing it lacks."""
        if not self.ours:
            return f"{self.text} --help"
        return f"{self.text} {'--dry-run' if 'sweep' in self.words()[:4] else '--print_config'}"


def documented_commands(root: Path) -> list[Command]:
    """The commands of ``root``'s README.md, then of its docs/*.md pages in name order."""
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [c for page in pages for c in readme_commands(page.read_text(), str(page.relative_to(root)))]


def readme_commands(readme: str, source: str = "README.md") -> list[Command]:
    """Every command of one page in order: fenced ```bash lines and inline ``python -m c2s_lightning``."""
    found = []
    for block in FENCE.finditer(readme):
        offset = block.start(1)
        for raw in re.split(r"(?<!\\)\n", block.group(1)):
            line = readme.count("\n", 0, offset) + 1
            offset += len(raw) + 1
            text, _, comment = raw.replace("\\\n", " ").partition(" #")
            text = " ".join(text.split())
            if text and not text.startswith("#"):
                found.append((offset, Command(text, line, "# " + comment.strip() if comment else "", source=source)))
    masked = FENCE.sub(lambda m: " " * len(m.group(0)), readme)
    for match in INLINE.finditer(masked):
        line = readme.count("\n", 0, match.start()) + 1
        found.append((match.start(), Command(" ".join(match.group(1).split()), line, inline=True, source=source)))
    return [command for _, command in sorted(found, key=lambda pair: pair[0])]


def is_syntax(command: Command, made_by_syntax: set[str]) -> bool:
    """A placeholder (``X.yaml``, ``EXPORT``, ``...``), or a file only a placeholder command writes."""
    words = command.words()
    return any(PLACEHOLDER.search(w) for w in words) or bool(made_by_syntax & set(words))


def plan(commands: list[Command]) -> list[tuple[str, Command]]:
    """``(kind, command)`` in README order; kind is ``run``, ``check``, ``syntax`` or ``again``."""
    planned, seen, made_by_syntax = [], set(), set()
    for command in commands:
        if is_syntax(command, made_by_syntax):
            words = command.words()
            made_by_syntax |= {words[i + 1] for i, w in enumerate(words[:-1]) if w == ">"}
            planned.append(("syntax", command))
        elif command.text in seen:
            planned.append(("again", command))
        else:
            seen.add(command.text)
            planned.append(("check" if command.needs else "run", command))
    return planned


def fresh_clone(work: Path) -> tuple[Path, str]:
    """``git clone`` of this tree's HEAD into ``work/repo``; returns the clone and the commit."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print("readme_walk: note: uncommitted changes are not in the clone (it is HEAD's)")
    clone = work / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", sha], cwd=clone, check=True)
    return clone, sha


def link_venv(clone: Path, venv: Path, make_targets: list[str]) -> None:
    """Link ``venv`` as the clone's ``.venv``, so that ``make`` finds its set-up done.

    git gives the clone's files the time of the clone, newer than the venv's install stamp, and make
    would then re-create ``.venv`` in place: in the linked venv, and install this temporary clone
    into it. The clone's files are dated just before the venv's install instead, and ``make -n``
    must show no install step for any make target of the README.
    """
    stamp = next(iter(sorted(venv.glob(".installed*"))), venv / ".installed")  # .installed-cpu or -cuda (TORCH=)
    if not (venv / "bin" / "python").exists() or not stamp.is_file():
        raise SystemExit(f"readme_walk: {venv} is not an installed .venv (no bin/python or .installed-*); "
                         "give --venv PATH, or --install")
    (clone / ".venv").symlink_to(venv.resolve())
    before = stamp.stat().st_mtime - 1
    files = subprocess.run(["git", "ls-files", "-z"], cwd=clone, check=True, capture_output=True,
                           text=True).stdout.split("\0")
    for name in filter(None, files):
        os.utime(clone / name, (before, before), follow_symlinks=False)
    for target in make_targets:
        dry = subprocess.run(["make", "-n", target], cwd=clone, capture_output=True, text=True)
        if dry.returncode or re.search(r"pip install|-m venv", dry.stdout):
            raise SystemExit(f"readme_walk: `make {target}` would (re)install the linked venv "
                             f"{venv}; refusing. make -n said:\n{dry.stdout}{dry.stderr}")


def walk_env(clone: Path, work: Path, linked: bool) -> dict[str, str]:
    """The environment after ``. .venv/bin/activate`` on a new machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("C2S_", "PYTHON", "VIRTUAL_ENV", "WANDB_", "PYTEST_"))}
    env.update(PATH=f"{clone / '.venv' / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(clone / ".venv"),
               C2S_CACHE_DIR=str(work / "cache"), WANDB_MODE="offline", HF_HUB_OFFLINE="1")
    if linked:  # the linked venv's editable install points at its own checkout, not at the clone
        env["PYTHONPATH"] = str(clone)
    return env


def run(text: str, clone: Path, env: dict[str, str], timeout: float, log: Path) -> tuple[int, float]:
    """Run ``text`` with bash in its own process group; on timeout the whole group ends (rc 124)."""
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", "-c", text], cwd=clone, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            rc = 124
    return rc, time.monotonic() - start


def tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    return "\n".join(f"    | {line}" for line in lines)


def walk(planned: list[tuple[str, Command]], clone: Path, env: dict[str, str], timeout: float,
         logs: Path) -> dict[str, int]:
    """Run the plan, printing a line per command; returns the counts of the summary."""
    counts = dict.fromkeys(("ran", "passed", "checked", "check_failed", "syntax", "again"), 0)
    for number, (kind, command) in enumerate(planned, start=1):
        if kind in ("syntax", "again"):
            counts[kind] += 1
            print(f"{'skip' if kind == 'syntax' else 'again':<8} {'':>7}  {command.text}", flush=True)
            continue
        text = command.text if kind == "run" else command.check_text()
        log = logs / f"{number:02d}.log"
        rc, seconds = run(text, clone, env, timeout, log)
        ok = rc == 0
        if kind == "run":
            counts["ran"] += 1
            counts["passed"] += ok
            status = "pass" if ok else ("TIMEOUT" if rc == 124 else f"FAIL {rc}")
        else:
            counts["checked"] += 1
            counts["check_failed"] += not ok
            status = "checked" if ok else f"CHECK {rc}"
        print(f"{status:<8} {seconds:6.1f}s  {text}", flush=True)
        if not ok:
            print(f"  {command.where}; output tail ({log}):\n{tail(log)}", flush=True)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    setup = parser.add_mutually_exclusive_group()
    setup.add_argument("--venv", type=Path, default=ROOT / ".venv", help="installed venv to link (default: %(default)s)")
    setup.add_argument("--install", action="store_true", help="link nothing: the README's make creates .venv")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per command (default: %(default)s)")
    parser.add_argument("--only", help="run only the commands matching this regex (the rest are not listed)")
    parser.add_argument("--workdir", type=Path, help="where the temporary folder goes (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the clone (kept anyway when a command fails)")
    parser.add_argument("--shared-data", type=Path, default=Path("/work/shared/data"),
                        help="label data for the user's KonIQ-10k copy (default: %(default)s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="readme_walk_", dir=args.workdir))
    clone, sha = fresh_clone(work)
    planned = plan(documented_commands(clone))
    if args.only:
        planned = [(kind, c) for kind, c in planned if re.search(args.only, c.text)]
    if not args.install:
        targets = [c.words()[1] for kind, c in planned if kind == "run" and c.words()[:1] == ["make"]]
        link_venv(clone, args.venv, targets)
    print(f"readme_walk: HEAD {sha[:12]} cloned to {clone}; .venv "
          f"{'from the README set-up' if args.install else f'linked from {args.venv}'}")
    from readme_user_files import make_user_files  # imports the package: after the clone, which is quick

    for line in make_user_files(clone, args.shared_data):
        print(f"readme_walk: the user's files: {line}")
    logs = work / "logs"
    logs.mkdir()
    counts = walk(planned, clone, walk_env(clone, work, not args.install), args.timeout, logs)
    failed = counts["ran"] - counts["passed"] + counts["check_failed"]
    print(f"readme_walk: {counts['ran']} ran, {counts['passed']} passed, {counts['checked']} checked only "
          f"(marked '# needs': a GPU or a download; {counts['check_failed']} failed), {counts['syntax']} skipped "
          f"(placeholders), {counts['again']} repeated; {time.monotonic() - started:.0f} s")
    if failed or args.keep:
        print(f"readme_walk: clone and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
