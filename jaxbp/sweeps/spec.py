"""Sweep specs: a TOML file naming an MLflow experiment, a dataset, a base ``TrainConfig`` and the axes to sweep.

What it is for: reading and checking a spec (``load_spec``) before anything runs, and expanding it into the
list of configs it stands for (``expand``): the grid of all axis values, or ``samples`` random draws.
What it is not: no training and no tracking (see ``run``).

    name = "quickstart"             # the MLflow experiment
    dataset = "digits"
    metric = "validation_accuracy"  # what ranks the configs (final epoch; a search's rungs too)
    mode = "grid"                   # or "random" (samples = N draws), or a search: "halving", "hyperband",
                                    # "pbt", "optuna", whose settings are in [search] (see search.settings)
    [base]                          # any TrainConfig field
    sizes = [64, 30, 10]
    [sweep]                         # axes: lists (grid), or in mode = "random" also ranges
    eta = [0.1, 0.3, 1.0, 3.0]
    hidden = [[10], [30], [100]]    # replaces the hidden part of sizes
    seed = [0, 1]

A top-level ``explain_example = N`` (before the tables) logs, after the sweep, ``jaxbp.explain`` of the best
config's final weights on example N of the test split to the parent run as ``explain.html``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from jaxbp.sweeps.search.settings import ADAPTIVE, check_search
from jaxbp.training.config import TrainConfig

METRICS = {"validation_accuracy": "max", "test_accuracy": "max", "train_accuracy_running": "max",
           "train_accuracy": "max", "validation_cost": "min", "test_cost": "min", "train_cost_running": "min",
           "train_cost": "min"}  # what they mean: jaxbp.training.metrics.METRIC_MEANINGS
FULL_ONLY = ("train_cost", "train_accuracy")  # measured only by configs with measure = "full"
MODES = ("grid", "random", *ADAPTIVE)
RANGES = ("log_uniform", "uniform", "int_uniform", "choice")
TOP_KEYS = ("name", "dataset", "metric", "mode", "samples", "sample_seed", "validation", "description", "base", "sweep",
            "search", "explain_example")
CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
AXIS_KEYS = (*CONFIG_KEYS, "hidden")


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec. ``base`` overrides TrainConfig's defaults; ``sweep`` maps an axis to its values
    (a list) or, in random mode, to a range such as {"log_uniform": [0.01, 10.0]}."""

    name: str
    dataset: str = "digits"
    metric: str = "validation_accuracy"
    mode: str = "grid"
    samples: int | None = None
    sample_seed: int = 0
    validation: int | float | None = None
    description: str = ""
    base: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)  # the [search] settings of an adaptive mode, defaults filled in
    source: str = ""  # the TOML text it was read from (logged as an artifact)
    explain_example: int | None = None  # the test example whose explain page the best config gets (None: none)

    @property
    def digest(self) -> str:
        """A hash of everything that decides the configs and their data: finds this sweep again on --resume."""
        keys = ("name", "dataset", "metric", "mode", "samples", "sample_seed", "validation", "base", "sweep",
                "search")
        values = {k: getattr(self, k) for k in keys}
        if self.explain_example is not None:  # only when set: the hashes of specs without it stay as they were
            values["explain_example"] = self.explain_example
        canonical = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def maximize(self) -> bool:
        return METRICS[self.metric] == "max"

    @property
    def epochs(self) -> int:
        """The most epochs any config trains ([base] epochs, else TrainConfig's default): a search's budget."""
        return self.base.get("epochs", TrainConfig.epochs)


def _unknown(kind: str, key: str, valid) -> ValueError:
    near = difflib.get_close_matches(key, list(valid), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f"; expected one of: {', '.join(valid)}"
    return ValueError(f"unknown {kind} {key!r}{hint}")


def _want(where: str, value, kinds, what: str):
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise TypeError(f"{where} must be {what}, got {value!r}")
    if not isinstance(value, kinds):
        raise TypeError(f"{where} must be {what}, got {type(value).__name__} {value!r}")
    return value


def parse_spec(table: dict, source: str = "", origin: str = "spec") -> SweepSpec:
    """A ``SweepSpec`` from a parsed TOML table, checked key by key (``origin`` names the file in errors)."""
    for key in table:
        if key not in TOP_KEYS:
            raise _unknown(f"key in {origin}:", key, TOP_KEYS)
    if "name" not in table:
        raise ValueError(f"{origin}: missing name = \"...\" (the MLflow experiment)")
    _want(f"{origin}: name", table["name"], str, "a string")
    _want(f"{origin}: dataset", table.get("dataset", "digits"), str, "a string")
    if table.get("metric", "validation_accuracy") not in METRICS:
        raise _unknown(f"metric in {origin}:", table["metric"], METRICS)
    mode = table.get("mode", "grid")
    if mode not in MODES:
        raise ValueError(f"{origin}: mode must be one of: {', '.join(MODES)}; got {mode!r}")
    samples = table.get("samples")
    if (mode == "random" or samples is not None) and not (
            isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1):
        raise ValueError(f"{origin}: samples must be a positive integer (mode = \"random\" needs samples = N), "
                         f"got {samples!r}")
    if mode in ("grid", "optuna") and samples is not None:
        raise ValueError(f"{origin}: samples does not apply to mode = {mode!r}" +
                         (" (its [search] trials says how many)" if mode == "optuna" else
                          "; use mode = \"random\" for random draws"))
    search = check_search(mode, table.get("search", {}), origin)
    _want(f"{origin}: sample_seed", table.get("sample_seed", 0), int, "an integer")
    if "validation" in table:
        _want(f"{origin}: validation", table["validation"], (int, float), "a count or a fraction")
        if not math.isfinite(table["validation"]):
            raise ValueError(f"{origin}: validation must be a finite count or fraction, got {table['validation']!r}")
    base = _want(f"{origin}: [base]", table.get("base", {}), dict, "a table")
    sweep = _want(f"{origin}: [sweep]", table.get("sweep", {}), dict, "a table")
    for key in base:
        if key not in CONFIG_KEYS:
            raise _unknown(f"TrainConfig key in [base] of {origin}:", key, CONFIG_KEYS)
    for key, values in sweep.items():
        if key not in AXIS_KEYS:
            raise _unknown(f"axis in [sweep] of {origin}:", key, AXIS_KEYS)
        _check_axis(f"{origin}: [sweep] {key}", key, values, ranges=samples is not None or mode == "optuna")
    if mode in ADAPTIVE and "epochs" in sweep:
        raise ValueError(f"{origin}: mode = {mode!r} cannot sweep epochs: [base] epochs is the most epochs any "
                         "config trains (the search's budget)")
    spec = SweepSpec(table["name"], table.get("dataset", "digits"), table.get("metric", "validation_accuracy"), mode,
                     samples, table.get("sample_seed", 0), table.get("validation"), table.get("description", ""),
                     base, sweep, search, source, _explain_example(table, origin))
    measures = sweep.get("measure", [base.get("measure", TrainConfig.measure)])
    if spec.metric in FULL_ONLY and (not isinstance(measures, list) or set(measures) != {"full"}):
        raise ValueError(f"{origin}: metric = {spec.metric!r} is the whole training split's, measured only with "
                         f"[base] measure = \"full\"; set that, or rank by {spec.metric}_running")
    if search.get("min_epochs", 1) > spec.epochs:
        raise ValueError(f"{origin}: [search] min_epochs = {search['min_epochs']} is more than [base] epochs = "
                         f"{spec.epochs}")
    expand(spec, None)  # every config it stands for must be a valid TrainConfig
    if mode == "optuna":  # Optuna proposes the points: each listed value must make a valid config
        for key, values in sweep.items():
            for value in values if isinstance(values, list) else []:
                config_of(spec, {key: value}, None)
    return spec


def _explain_example(table: dict, origin: str) -> int | None:
    """``explain_example`` of the spec: an index into the test split (checked against its size by ``run``)."""
    n = table.get("explain_example")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"{origin}: explain_example must be an integer ≥ 0 (an example of the test split), "
                         f"got {n!r}")
    return n


def check_explain_example(spec: SweepSpec, n_test: int) -> None:
    """Refuse an ``explain_example`` beyond the dataset's test split of ``n_test`` examples, in one line."""
    if spec.explain_example is not None and spec.explain_example >= n_test:
        raise ValueError(f"explain_example = {spec.explain_example} is not an example of dataset {spec.dataset!r}: "
                         f"its test split has {n_test} (0 to {n_test - 1})")


def _check_axis(where: str, key: str, values, *, ranges: bool) -> None:
    """A list of values, or (where ``ranges``: random draws or Optuna) a range table."""
    if isinstance(values, list):
        if not values:
            raise ValueError(f"{where} is empty; give at least one value")
        if key == "hidden" and not all(isinstance(v, list) for v in values):
            raise TypeError(f"{where} must be a list of lists of widths, e.g. [[30], [100, 30]]; got {values!r}")
        return
    if not isinstance(values, dict):
        raise TypeError(f"{where} must be a list of values" + (" or a range table" if ranges else "") +
                        f", got {type(values).__name__} {values!r}")
    if not ranges:
        raise ValueError(f"{where}: ranges such as {{log_uniform = [a, b]}} need samples = N draws (mode = "
                         "\"random\", or a search) or mode = \"optuna\"; use a list for a grid")
    if len(values) != 1 or next(iter(values)) not in RANGES:
        raise ValueError(f"{where} must be one of {{{' | '.join(f'{r} = [...]' for r in RANGES)}}}, got {values!r}")
    kind, bounds = next(iter(values.items()))
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise ValueError(f"{where}: choice needs a non-empty list")
        return
    numbers = isinstance(bounds, list) and len(bounds) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
    if not (numbers and bounds[0] < bounds[1]):
        raise ValueError(f"{where}: {kind} needs [low, high], finite numbers with low < high, got {bounds!r}")
    if kind == "log_uniform" and bounds[0] <= 0:
        raise ValueError(f"{where}: log_uniform needs low > 0, got {bounds!r}")


def load_spec(path) -> SweepSpec:
    """Read and check the TOML spec at ``path``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read spec {path}: {err.strerror or err}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None
    return parse_spec(table, text, str(path))


def _draw(values, rng: random.Random):
    """One random value of an axis: a list is a uniform choice, a range table is sampled as it says."""
    if isinstance(values, list):
        return rng.choice(values)
    ((kind, bounds),) = values.items()
    if kind == "choice":
        return rng.choice(bounds)
    low, high = bounds
    if kind == "log_uniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if kind == "int_uniform":
        return rng.randint(math.ceil(low), math.floor(high))
    return rng.uniform(low, high)


def points(spec: SweepSpec) -> list[dict]:
    """The axis values of every config: the grid (in the order the axes are written) or ``samples`` draws.
    Optuna proposes its own (none here)."""
    if spec.mode == "optuna":
        return []
    if spec.samples is None:
        keys = list(spec.sweep)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(spec.sweep[k] for k in keys))]
    rng = random.Random(spec.sample_seed)
    return [{k: _draw(v, rng) for k, v in spec.sweep.items()} for _ in range(spec.samples)]


def expand(spec: SweepSpec, shape: tuple[int, int] | None) -> list[tuple[dict, TrainConfig]]:
    """(axis values, TrainConfig) for every config of the sweep. ``shape`` = (n_in, n_classes) of the data
    fills in sizes where the spec leaves them out and is checked against them; None skips that check."""
    return [(point, config_of(spec, point, shape)) for point in points(spec)]


def config_of(spec: SweepSpec, point: dict, shape: tuple[int, int] | None) -> TrainConfig:
    """The TrainConfig of one point of the sweep's space (axis values) over ``[base]``."""
    values = {**spec.base, **{k: v for k, v in point.items() if k != "hidden"}}
    sizes = list(values.get("sizes") or ([shape[0], *TrainConfig().sizes[1:-1], shape[1]] if shape
                                         else TrainConfig().sizes))
    if "hidden" in point:
        sizes = [sizes[0], *point["hidden"], sizes[-1]]
    values["sizes"] = tuple(sizes)
    try:
        config = TrainConfig(**values)
    except (TypeError, ValueError) as err:
        raise type(err)(f"config {point}: {err}") from None
    if shape and (config.sizes[0], config.sizes[-1]) != tuple(shape):
        raise ValueError(f"sizes {list(config.sizes)} do not fit dataset {spec.dataset!r}: it has "
                         f"{shape[0]} inputs and {shape[1]} classes")
    return config
