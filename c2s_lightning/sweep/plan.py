"""W&B sweep files without a W&B server: read one, expand its search, build each run's command.

W&B's sweep configuration: ``method`` grid or random (bayes needs the server), ``parameters`` each
a ``value``, ``values`` (``probabilities``) or a ``distribution`` (``min``/``max``, ``q``, ``mu``,
``sigma``), ``run_cap``, and a ``command`` list whose ``${...}`` macros each stand for a whole argument.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import platform
import random
import sys
from pathlib import Path
from typing import Any

import yaml

from c2s_lightning.infra.yaml_files import safe_load

METHODS = ("grid", "random")
# Distributions a random search draws from, as functions of (spec, rng).
DISTRIBUTIONS = {
    "constant": lambda s, r: s["value"],
    "categorical": lambda s, r: r.choices(s["values"], weights=s.get("probabilities"))[0],
    "int_uniform": lambda s, r: r.randint(int(s["min"]), int(s["max"])),
    "uniform": lambda s, r: r.uniform(s["min"], s["max"]),
    "log_uniform": lambda s, r: math.exp(r.uniform(s["min"], s["max"])),  # bounds are ln values
    "log_uniform_values": lambda s, r: math.exp(r.uniform(math.log(s["min"]), math.log(s["max"]))),
    "normal": lambda s, r: r.gauss(s.get("mu", 0.0), s.get("sigma", 1.0)),
    "log_normal": lambda s, r: math.exp(r.gauss(s.get("mu", 0.0), s.get("sigma", 1.0))),
}


def _quantise(value: float, q: float) -> float | int:
    out = round(value / q) * q
    return int(out) if float(q).is_integer() else out


def _quantised(base):
    """The ``q_`` variant of a distribution: draws rounded to multiples of ``q`` (default 1)."""
    return lambda spec, rng: _quantise(base(spec, rng), spec.get("q", 1))


DISTRIBUTIONS.update({"q_" + name: _quantised(DISTRIBUTIONS[name])
                      for name in ("uniform", "log_uniform", "log_uniform_values", "normal", "log_normal")})


class SweepError(ValueError):
    """A sweep file this runner cannot run, with the reason."""


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check a sweep file: a known method and a mapping of parameters."""
    try:
        sweep = safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SweepError(f"{path}:{where} not valid YAML ({problem})") from None
    if not isinstance(sweep, dict) or not isinstance(sweep.get("parameters"), dict):
        raise SweepError(f"{path}: a sweep file is a mapping with a 'parameters' mapping")
    method = sweep.get("method")
    if method == "bayes":
        raise SweepError(f"{path}: method 'bayes' needs W&B's server (run `wandb sweep {path}` and "
                         "`wandb agent ID`); offline this runner does grid and random")
    if method not in METHODS:
        raise SweepError(f"{path}: method {method!r} is not one of {METHODS + ('bayes',)}")
    for name, spec in sweep["parameters"].items():
        if not isinstance(spec, dict) or "parameters" in spec:
            raise SweepError(f"{path}: parameter {name!r} must be a mapping with value/values/distribution "
                             "(nested parameters are not supported: use dotted names such as model.lr)")
        if spec.get("values") == []:
            raise SweepError(f"{path}: parameter {name!r} has no values ('values: []'); give at least one")
    return sweep


def distribution(spec: dict[str, Any]) -> str:
    """The distribution of a parameter spec, inferred as W&B does when it is not named."""
    for bound in ("min", "max", "q", "mu", "sigma"):
        if bound in spec and not isinstance(spec[bound], (int, float)):
            raise SweepError(f"{bound}: {spec[bound]!r} is not a number (YAML reads 1e-5 as text: write 1.0e-5)")
    if "distribution" in spec:
        return spec["distribution"]
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        return "int_uniform" if all(isinstance(spec[k], int) for k in ("min", "max")) else "uniform"
    raise SweepError(f"parameter spec {spec} has none of value, values, min/max, distribution")


def grid_values(name: str, spec: dict[str, Any]) -> list[Any]:
    """The values a grid search takes for one parameter."""
    kind = distribution(spec)
    if kind == "constant":
        return [spec["value"]]
    if kind == "categorical":
        return list(spec["values"])
    if kind == "int_uniform":
        return list(range(int(spec["min"]), int(spec["max"]) + 1))
    if kind == "q_uniform":
        q = spec.get("q", 1)
        steps = int(math.floor((spec["max"] - spec["min"]) / q + 1e-9))
        return [_quantise(spec["min"] + i * q, q) for i in range(steps + 1)]
    raise SweepError(f"grid search cannot enumerate {name!r} ({kind}); give it 'values'")


def expand_grid(parameters: dict[str, dict]) -> list[dict[str, Any]]:
    """Every combination, in file order with the last parameter varying fastest."""
    axes = [grid_values(name, spec) for name, spec in parameters.items()]
    return [dict(zip(parameters, combo)) for combo in itertools.product(*axes)]


def sample_random(parameters: dict[str, dict], count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` distinct seeded draws (fewer when the space holds fewer distinct combinations)."""
    for name, spec in parameters.items():
        if distribution(spec) not in DISTRIBUTIONS:
            raise SweepError(f"parameter {name!r}: distribution {spec['distribution']!r} is not supported; "
                             f"supported: {sorted(DISTRIBUTIONS)}")
    rng, runs = random.Random(seed), {}
    # A repeated draw would be skipped as already finished anyway; bounded so tiny spaces end.
    for _ in range(max(100, 50 * count)):
        if len(runs) == count:
            break
        params = {n: DISTRIBUTIONS[distribution(s)](s, rng) for n, s in parameters.items()}
        runs.setdefault(param_key(params), params)
    return list(runs.values())


def expand(sweep: dict[str, Any], count: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The parameter sets of a sweep; ``count`` (else ``run_cap``) bounds them."""
    cap = count if count is not None else sweep.get("run_cap")
    if sweep["method"] == "grid":
        runs = expand_grid(sweep["parameters"])
        return runs if cap is None else runs[:cap]
    if cap is None:
        raise SweepError("a random sweep runs until stopped under W&B; offline give --count N or run_cap")
    return sample_random(sweep["parameters"], cap, seed)


def param_key(params: dict[str, Any]) -> str:
    """A stable hash of one run's parameters (names its folder and its record in the state)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Files whose contents are part of a command: configs and scripts. Other files (checkpoints,
# images) and folders count by name only: hashing them would be slow or follow the runs' own output.
CONTENT_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".cfg", ".ini", ".py")


def command_key(command: list[str]) -> str:
    """A hash of a run's whole command (its resume key): every argument (the running interpreter as
    ``python``, whatever its path) and the contents of the configs and scripts it names (``--config=x.yaml`` too)."""
    digest = hashlib.sha1()
    for arg in command:
        digest.update(("python" if arg == sys.executable else arg).encode() + b"\0")
        for name in dict.fromkeys([arg, arg.split("=", 1)[-1]]):  # ordered: the hash must be stable
            file = Path(name)
            if file.suffix in CONTENT_SUFFIXES and file.is_file():
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def macro_values(params: dict[str, Any], program: str | None) -> dict[str, list[str]]:
    """What each ``${macro}`` expands to, formatted as ``wandb agent`` does; ``${interpreter}`` is the
    running Python (``wandb agent``'s is ``python`` from PATH), so runs share this command's environment."""
    flags = [f"{k}={v}" for k, v in params.items()]
    return {
        "env": ["/usr/bin/env"] if platform.system() != "Windows" else [],
        "interpreter": [sys.executable],
        "program": [program] if program else [],
        "args": ["--" + f for f in flags],
        "args_no_hyphens": flags,
        "args_no_equals": [part for k, v in params.items() for part in (f"--{k}", str(v))],
        "args_no_boolean_flags": [f"--{k}" if v is True else f"--{k}={v}" for k, v in params.items()
                                  if v is not False],
        "args_json": [json.dumps(params)],
        "args_append_hydra": ["+" + f for f in flags],
        "args_override_hydra": ["++" + f for f in flags],
    }


DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def substitute(template: list[str], params: dict[str, Any], program: str | None = None,
               json_file: str | None = None) -> list[str]:
    """The command of one run: each whole ``${macro}`` argument replaced by its arguments."""
    values = macro_values(params, program)
    if json_file is not None:
        values["args_json_file"] = [json_file]
    command = []
    for token in map(str, template):
        if token.startswith("${") and token.endswith("}"):
            if token[2:-1] not in values:
                raise SweepError(f"unknown or unavailable macro {token} in the command; known: {sorted(values)}")
            command += values[token[2:-1]]
        else:
            command.append(token)
    return command
