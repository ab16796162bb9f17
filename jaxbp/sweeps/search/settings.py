"""The ``[search]`` table of a sweep spec: which settings each search mode takes, their defaults, and their checks.

What it is for: ``check_search(mode, table, origin)`` returns the settings with defaults filled in, or refuses
an unknown key (with the nearest valid one) or a bad value in one line, before anything runs. Importable
without jax or optuna (``spec`` uses it).
What it is not: no search (see ``halving``, ``pbt``, ``optuna`` beside it).

    mode = "halving"            # or "hyperband", "pbt", "optuna"
    [search]
    min_epochs = 1              # halving, hyperband: epochs of the first rung (r)
    reduction_factor = 3        # halving, hyperband: the top 1/factor of a rung continue
    brackets = 2                # hyperband: how many brackets, most aggressive first (default: all)
    interval = 2                # pbt: epochs between generations
    quantile = 0.25             # pbt: the bottom quantile copies a config of the top quantile
    perturb = [0.8, 1.2]        # pbt: η (and λ when swept) multiplied by one of these
    sampler = "tpe"             # optuna: "tpe", "cmaes" or "random"
    trials = 32                 # optuna: how many configs in all
    batch = 8                   # optuna: configs asked for (and trained together) at a time
    pruner = "median"           # optuna: "median" stops a trial whose metric falls below the median; "none"
    storage = "sqlite:///x.db"  # optuna: the study's database (default: beside a SQLite MLflow store)
    seed = 0                    # pbt, optuna, hyperband: the seed of the search's own random choices
"""

from __future__ import annotations

import difflib
import math

ADAPTIVE = ("halving", "hyperband", "pbt", "optuna")
SAMPLERS = ("tpe", "cmaes", "random")
PRUNERS = ("median", "none")


def _integer(low: int):
    def check(value) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return None if ok else f"an integer ≥ {low}"
    return check


def _fraction(value) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 0.5
    return None if ok else "a number in (0, 0.5]"


def _factors(value) -> str | None:
    ok = isinstance(value, list) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value)
    return None if ok else "a non-empty list of finite numbers > 0, e.g. [0.8, 1.2]"


def _one_of(options):
    def check(value) -> str | None:
        return None if value in options else f"one of: {', '.join(map(repr, options))}"
    return check


def _text(value) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string (a database URI)"


# mode -> key -> (default, check: value -> None if good, else what was expected)
SETTINGS: dict[str, dict[str, tuple]] = {
    "grid": {},
    "random": {},
    "halving": {"min_epochs": (1, _integer(1)), "reduction_factor": (3, _integer(2))},
    "hyperband": {"min_epochs": (1, _integer(1)), "reduction_factor": (3, _integer(2)),
                  "brackets": (None, _integer(1)), "seed": (0, _integer(0))},
    "pbt": {"interval": (2, _integer(1)), "quantile": (0.25, _fraction), "perturb": ([0.8, 1.2], _factors),
            "seed": (0, _integer(0))},
    "optuna": {"sampler": ("tpe", _one_of(SAMPLERS)), "trials": (32, _integer(1)), "batch": (8, _integer(1)),
               "pruner": ("none", _one_of(PRUNERS)), "storage": (None, _text), "seed": (0, _integer(0))},
}


def in_process_only(mode: str) -> str:
    """Why a search refuses another executor: its configs stop, continue and copy each other between epochs."""
    return (f"mode = {mode!r} trains in this process (its configs stop, continue and copy each other between "
            "epochs); leave out --executor ray")


def check_search(mode: str, table, origin: str = "spec") -> dict:
    """The ``[search]`` settings of ``mode`` with defaults filled in; a ValueError/TypeError in one line names
    the key and what it expects."""
    if not isinstance(table, dict):
        raise TypeError(f"{origin}: [search] must be a table, got {type(table).__name__} {table!r}")
    valid = SETTINGS[mode]
    for key in table:
        if key not in valid:
            if not valid:
                raise ValueError(f"{origin}: mode = {mode!r} takes no [search] settings (got {key!r}); "
                                 f"they belong to mode = {' | '.join(map(repr, ADAPTIVE))}")
            near = difflib.get_close_matches(key, list(valid), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"expected one of: {', '.join(valid)}"
            raise ValueError(f"{origin}: unknown key {key!r} in [search] of mode = {mode!r}; {hint}")
    settings = {}
    for key, (default, check) in valid.items():
        value = table.get(key, default)
        if key in table and (problem := check(value)):
            raise ValueError(f"{origin}: [search] {key} must be {problem}, got {value!r}")
        settings[key] = value
    return settings
