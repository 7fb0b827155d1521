"""One argument machinery for every tool command: jsonargparse, as LightningCLI uses for training.

Each tool parser takes ``--config FILE`` (the options' names as keys, e.g. ``batch_size: 8``),
``--print_config`` and shows every default in ``--help``. A mistyped option or action gets a
suggestion, as in LightningCLI's parser (``lightning_cli.SuggestingParser``).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing

from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter, Namespace

from c2s_lightning.infra.user_errors import suggestion
from c2s_lightning.infra.yaml_files import bound_config_loaders


class _ExclusiveGroup:
    """Options of which at most one may be given. Added to the parser itself, so that jsonargparse
    types them (argparse's own group would leave a ``Path`` that ``--print_config`` cannot write)."""

    def __init__(self, parser: ArgumentParser):
        self.parser, self.actions = parser, []

    def add_argument(self, *args, **kwargs):
        self.actions.append(self.parser.add_argument(*args, **kwargs))
        return self.actions[-1]

    def check(self, ns: Namespace) -> None:
        given = [a for a in self.actions if ns.get(a.dest) != a.default]
        if len(given) > 1:
            self.parser.error(f"argument {given[1].option_strings[0]}: not allowed with argument "
                              f"{given[0].option_strings[0]}")


class ErrorsThatHelp:
    """A parser mixin for the tools' and LightningCLI's parsers: a one-line error that names the
    option meant (among the parser's own and ``other_options``, e.g. ``evaluate``'s when LightningCLI
    parses the rest of its line), after one usage line, not a listing that would bury it."""

    prog: str
    other_options: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        # argparse takes any unique prefix (--readof for --readoff): a typo could pick another option
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def print_usage(self, file=None) -> None:
        (file or sys.stdout).write(f"usage: {self.prog.replace(' [options]', '')} [options]\n")

    def error(self, message: str, *args, **kwargs):
        hint = unknown_option_hint(message, [*long_options(self), *self.other_options])
        one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
        return super().error(one_line + hint, *args, **kwargs)


class ToolParser(ErrorsThatHelp, ArgumentParser):
    """A jsonargparse parser whose errors suggest the option or action meant."""

    def add_mutually_exclusive_group(self, **kwargs) -> _ExclusiveGroup:
        groups = self.__dict__.setdefault("exclusive_groups", [])
        groups.append(_ExclusiveGroup(self))
        return groups[-1]


def long_options(parser: ArgumentParser) -> list[str]:
    """The ``--`` options of ``parser`` and, when it has subcommands, of the one its arguments chose
    (of every one before a choice is seen): the candidates of a did-you-mean."""
    options = [o for o in parser._option_string_actions if o.startswith("--")]  # noqa: SLF001
    options += [f"--{action.dest}.{field}" for action in parser._actions  # noqa: SLF001
                for field in _dataclass_fields(getattr(action, "_typehint", action.type))]
    actions = parser._subcommands_action  # noqa: SLF001
    if actions is not None:
        chosen = [a for a in getattr(parser, "args", None) or [] if a in actions.choices][:1]
        for name in chosen or actions.choices:
            options += long_options(actions.choices[name])
    return list(dict.fromkeys(options))


def _dataclass_fields(hint) -> list[str]:
    """The fields of a dataclass option (``--dataset.name``), also under ``Optional``."""
    for kind in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(kind):
            return [field.name for field in dataclasses.fields(kind)]
    return []


def unknown_option_hint(message: str, options: list[str]) -> str:
    """``"; did you mean '--x'?"`` for the first unknown option a parser's error ``message`` names:
    an unrecognized ``--`` argument, or a config file's key (then suggested as a key, ``x.y``)."""
    unknown = re.search(r"nrecognized arguments: (.*)", message)
    for token in unknown.group(1).split() if unknown else []:
        if token.startswith("--"):
            return suggestion(token.split("=", 1)[0], options)
    nested = re.search(r"Parser key \"([^\"]+)\":.*?Option '([^']+)' is not accepted", message, re.DOTALL)
    if nested:  # a mistyped field of a dataclass option (--dataset.nme)
        return suggestion(f"--{nested.group(1)}.{nested.group(2)}", options)
    key = re.search(r"(?:Subcommand '[^']+'|Group '([^']+)') does not accept option '([^']+)'", message)
    if key:
        given = f"{key.group(1)}.{key.group(2)}" if key.group(1) else key.group(2)
        return suggestion(given, [o[2:] for o in options])
    return ""


def tool_parser(prog: str, description: str | None, config: bool = True) -> ToolParser:
    """A tool command's parser with ``--config`` and ``--print_config`` (unless ``config`` is false:
    ``evaluate`` hands ``--config`` to LightningCLI)."""
    bound_config_loaders()
    parser = ToolParser(prog=f"python -m c2s_lightning {prog}", description=description,
                        formatter_class=DefaultHelpFormatter)
    if config:
        parser.add_argument("--config", action=ActionConfigFile,
                            help="YAML/JSON file of these options (keys as in --print_config)")
    return parser


def add_actions(parser: ToolParser, actions: dict[str, tuple[str, ToolParser]]) -> None:
    """Sub-actions (``data synth``, ``anchors build``): name -> (one-line help, its parser)."""
    sub = parser.add_subcommands(required=True, dest="action")
    for name, (text, action_parser) in actions.items():
        sub.add_subcommand(name, action_parser, help=text)


def parse_tool(parser: ToolParser, args: list[str]) -> Namespace:
    """Parse ``args``; for a parser with actions, the chosen action's options with ``action`` set."""
    actions = parser._subcommands_action  # noqa: SLF001 (jsonargparse keeps the choices here)
    if actions is not None and args and not args[0].startswith("-") and args[0] not in actions.choices:
        parser.error(f"unknown action {args[0]!r}{suggestion(args[0], actions.choices)} "
                     f"(choose from {', '.join(actions.choices)})")
    ns = parser.parse_args(args)
    if actions is None:
        return _checked(parser, ns)
    chosen = _checked(actions.choices[ns.action], ns[ns.action])
    chosen.action = ns.action
    return chosen


def _checked(parser: ArgumentParser, ns: Namespace) -> Namespace:
    for group in getattr(parser, "exclusive_groups", []):
        group.check(ns)
    return ns


def replacing_lists(args: list[str], keys: tuple[str, ...]) -> list[str]:
    """``args`` with each of ``keys`` (e.g. ``--data.datasets``) given on the command line reset to an
    empty list just before, so the list given replaces a config's (``+=`` still appends).

    jsonargparse merges a list of dataclasses item by item: without the reset, ``--data.datasets
    '[{name: list, ...}]'`` after a config keeps the options of the config's first item that the
    new item does not name (``synthesize: true``, ...), and every later item.
    """
    out: list[str] = []
    for arg in args:
        if arg in keys or arg.split("=", 1)[0] in keys:
            out += [arg.split("=", 1)[0], "[]"]
        out.append(arg)
    return out

