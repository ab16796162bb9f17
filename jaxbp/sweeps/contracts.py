"""The named contracts between a sweep's parts: what an executor, a progress display and a ranked row are.

What it is for: ``run_sweep`` talks to its executor (``LocalExecutor``, ``RayExecutor``) and to the command
line's progress bars (or a batch job's log lines) only through these; a result row is a ``Row``, not a dict.
What it is not: no behaviour; see ``run``, ``recorder``, ``results`` and ``executors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from jaxbp.sweeps.recorder import Recorder
    from jaxbp.sweeps.spec import SweepSpec
    from jaxbp.training.config import TrainConfig
    from jaxbp.training.data import Dataset


class Progress(Protocol):
    """What a sweep reports as it goes (the CLI's bars, a batch job's log lines)."""

    def start(self, n_configs: int, done: int) -> None: ...
    def group(self, n: int, epochs: int) -> None: ...
    def epoch(self, index: int, metrics: dict) -> None: ...
    def config_done(self) -> None: ...


class Executor(Protocol):
    """Trains a sweep's groups of configs (each group one compiled program) and hands every trained config
    to ``recorder``; returns the indices of configs it could not finish."""

    def run(self, spec: SweepSpec, items: list[tuple[dict, TrainConfig]], groups: list[list[int]], data: Dataset,
            recorder: Recorder, progress: Progress | None) -> list[int]: ...


class Search(Protocol):
    """An adaptive search (``spec.mode`` halving, hyperband, pbt or optuna): decides which configs train for
    how long, hands every config to ``recorder.submit`` as it ends (those it stops with status "pruned"),
    keeps what ``--resume`` needs in the spool, and returns the files its parent run keeps."""

    def run(self, spec: SweepSpec, items: list[tuple[dict, TrainConfig]], data: Dataset, recorder: Recorder,
            progress: Progress | None) -> list[Path]: ...


class Row(NamedTuple):
    """One config of a finished sweep, as ranked: its child run, the spec's metric (``value``, None when it is
    not finite), every split's final accuracy and cost, and how many epochs it ran."""

    run_id: str
    name: str
    index: int
    status: str
    value: float | None
    eta: float
    sizes: str
    epochs: int | None
    final: dict  # {"train_cost_running": …, "validation_accuracy": …, …}: None where absent
    params: dict  # every TrainConfig field as logged
