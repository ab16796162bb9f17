"""``TrainConfig``: every setting of a training run, with its default, in one frozen dataclass.

What it is for: one place for defaults (a sweep spec or a CLI option only overrides), and checking every
field before anything is computed (``validate``), with errors that name what was expected.
What it is not: no training; see ``loop`` and ``together``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass

from jaxbp.core import names

# The names of the choices, importable without jax (the command line's help lists them); ``optim`` builds
# its optax transformations from the same names (a test asserts they agree).
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "lamb", "lion")
SCHEDULES = ("constant", "cosine", "linear", "exponential", "warmup_cosine")
GRADIENTS = ("bp", "autodiff")
DTYPES = ("float32", "float64")
# How each epoch measures the training split (``metrics.METRIC_MEANINGS`` says what every reported number is):
# "running": the mean over the epoch's mini-batches, read off the updates' own forward passes;
# "full": that, plus the cost and accuracy of the whole training split after the epoch (one more pass).
MEASURES = ("running", "full")


PROGRAM, PER_CONFIG = "program", "per_config"  # the two parts of a TrainConfig (see ``fields_of``)


def _program(default):
    return dataclasses.field(default=default, metadata={"part": PROGRAM})


def _per_config(default):
    return dataclasses.field(default=default, metadata={"part": PER_CONFIG})


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Defaults are Nielsen's chapter-1 network on the bundled digits.

    sizes: layer widths n_0..n_L; activation / output_activation (None = same as hidden); cost; eta: the
    learning rate η; batch_size: m; epochs; init: scheme of ``init_params``; seed: the initial weights, and
    the mini-batch order unless data_seed is given; data_seed: the mini-batch order alone (None = seed; a
    sweep whose configs share it draws the same mini-batches, whatever their seeds: one GEMM for all);
    l2: λ of the weight decay (λ/2n) Σ w² (ch. 3); optimizer: "sgd" (Algorithm 5.3 exactly) or an optax
    optimizer by name; schedule: how η changes over the run (an optax schedule); early_stopping: stop after
    this many epochs without a better validation accuracy (0 = off); gradients: "bp" (BP1–BP4) or
    "autodiff" (jax.grad); dtype: float32 or float64; measure: "running" (the training cost and accuracy
    are the means over the epoch's mini-batches, ``train_cost_running``, at no extra cost) or "full" (also
    ``train_cost``/``train_accuracy`` on the whole training split after each epoch). Validation and test
    are always measured exactly, on their whole splits."""

    # Every field is declared PROGRAM (it shapes the compiled program: configs train together only when they
    # agree on it) or PER_CONFIG (it may differ between configs of one program); a test fails on any other.
    sizes: tuple[int, ...] = _program((64, 30, 10))
    activation: str = _program("sigmoid")
    output_activation: str | None = _program(None)
    cost: str = _program("quadratic")
    eta: float = _per_config(3.0)
    batch_size: int = _program(10)
    epochs: int = _program(30)
    init: str = _per_config("normal")
    seed: int = _per_config(0)
    data_seed: int | None = _per_config(None)
    l2: float = _per_config(0.0)
    optimizer: str = _program("sgd")
    schedule: str = _program("constant")
    early_stopping: int = _per_config(0)
    gradients: str = _program("bp")
    dtype: str = _program("float32")
    measure: str = _program("running")

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(self.sizes) if isinstance(self.sizes, (list, tuple)) else self.sizes)
        validate(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a mapping (a spec, a checkpoint), refusing unknown keys with the nearest valid one."""
        names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        for key in values:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(names)}"
                raise ValueError(f"unknown TrainConfig key {key!r}{hint}")
        return cls(**values)

    def to_dict(self) -> dict:
        """Every field by name, sizes as a list: what is logged and checkpointed."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        out["sizes"] = list(self.sizes)
        return out


def fields_of(part: str) -> tuple[str, ...]:
    """The names of TrainConfig's ``PROGRAM`` fields (what shapes the compiled program) or ``PER_CONFIG`` ones
    (η, λ, seed, init scheme, early stopping: what configs trained together may differ in)."""
    if part not in (PROGRAM, PER_CONFIG):
        raise ValueError(f"part must be {PROGRAM!r} or {PER_CONFIG!r}, got {part!r}")
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("part") == part)


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of: {', '.join(options)}; got {value!r}")


def _number(name: str, value, kind, low, *, strict: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        want = "an integer" if kind is int else "a number"
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} {low}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Check every field of ``config``; raises ValueError/TypeError naming the field and what was expected."""
    from jaxbp.core import activations, costs  # the registries need jax: loaded when a config is made, not at import
    from jaxbp.core.network import check_sizes

    check_sizes(config.sizes)
    activations.get_activation(config.activation)
    output = config.output_activation
    out = activations.get_activation(output, output=True) if output is not None else None
    cost = costs.get_cost(config.cost)
    costs.check_pairing(cost, out or activations.get_activation(config.activation), config.sizes[-1])
    _number("eta", config.eta, (int, float), 0, strict=True)
    _number("batch_size", config.batch_size, int, 1, strict=False)
    _number("epochs", config.epochs, int, 1, strict=False)
    _number("seed", config.seed, int, 0, strict=False)
    if config.data_seed is not None:
        _number("data_seed", config.data_seed, int, 0, strict=False)
    _number("l2", config.l2, (int, float), 0, strict=False)
    _number("early_stopping", config.early_stopping, int, 0, strict=False)
    _choice("init", config.init, names.INIT_SCHEMES)
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("schedule", config.schedule, SCHEDULES)
    _choice("gradients", config.gradients, GRADIENTS)
    _choice("dtype", config.dtype, DTYPES)
    _choice("measure", config.measure, MEASURES)
