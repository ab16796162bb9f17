"""The terminal output of the command line: tables and progress bars drawn with rich from the library's results.

What it is for: the gradcheck and history tables, the epoch and sweep progress bars, the ranked sweep table,
and ``quiet_libraries`` (MLflow's and Ray's INFO lines off; their warnings stay).
What it is not: no computing and no sequencing (see ``commands``); nothing here imports jax, nor MLflow
before ``quiet_libraries`` is called.
"""

from __future__ import annotations

import logging

from rich import box
from rich.console import Console
from rich.table import Table

from jaxbp.training.metrics import train_metric


def quiet_libraries() -> None:
    """Only warnings and errors from MLflow, its database migrations (alembic) and Ray reach the terminal: their
    INFO lines ("Creating initial MLflow database tables...") say nothing a jaxbp user acts on."""
    import mlflow  # noqa: F401  (it sets its loggers' levels when first imported: after that, ours hold)

    for name in ("mlflow", "alembic", "ray", "optuna.study", "optuna.storages"):  # optuna resets "optuna"
        logging.getLogger(name).setLevel(logging.WARNING)
    # A local Ray that jaxbp starts has token authentication on by default, and Ray says so at WARNING: nothing
    # to act on. Its warning that authentication is *off* (a cluster open to the network) still shows.
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
        lambda record: not record.getMessage().startswith("Token authentication is enabled"))


def gradcheck_table(result, rtol: float, fd_rtol: float) -> Table:
    """One row per layer: shape, max |BP − autodiff|, relative errors, verdict."""
    table = Table(title=f"BP1–BP4 vs jax.grad, finite differences and the angel — sizes {list(result.sizes)}")
    for name in ("layer", "w shape", "max|BP−AD|", "rel vs AD", "rel vs FD", "rel angel", "ok"):
        table.add_column(name, justify="right")
    for l in range(len(result.sizes) - 1):
        checks = ((result.autodiff, rtol), (result.finite_difference, fd_rtol), (result.angel, fd_rtol))
        ok = all(report.rel[l] <= tol for report, tol in checks)
        table.add_row(
            str(l + 1), f"{result.sizes[l + 1]}×{result.sizes[l]}", f"{result.autodiff.max_abs[l]:.2e}",
            *(f"{report.rel[l]:.2e}" for report, _ in checks), "[green]yes[/]" if ok else "[red]NO[/]",
        )
    table.caption = (f"relative errors per layer; AD = jax.grad, FD = finite differences, angel = ∂C/∂net vs δ.\n"
                     f"tolerances: BP vs AD ≤ {rtol:g}; finite differences and angel ≤ {fd_rtol:g}")
    return table


class EpochProgress:
    """A rich progress bar over epochs, used as a ``train`` callback; shows cost and accuracies.

    Use as a context manager: ``with EpochProgress(epochs) as bar: train(..., callbacks=[bar])``."""

    def __init__(self, epochs: int, *, description: str = "training", console: Console | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"), console=console or Console(stderr=True), transient=False,
        )
        self.task = self.progress.add_task(description, total=epochs, metrics="")

    def __enter__(self) -> EpochProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, metrics: dict) -> None:
        self.progress.update(self.task, advance=1, metrics=format_metrics(metrics))


def format_metrics(metrics: dict) -> str:
    """'cost 0.0912 · train 0.951 · val 0.948 · test 0.944' from an epoch's metrics."""
    parts = [f"cost {train_metric(metrics):.4g}", f"train {train_metric(metrics, 'accuracy'):.3f}"]
    for key, label in (("validation_accuracy", "val"), ("test_accuracy", "test")):
        if metrics.get(key) is not None:
            parts.append(f"{label} {metrics[key]:.3f}")
    return " · ".join(parts)


def history_table(history: list[dict], title: str) -> Table:
    """The per-epoch history as a table (the last rows when the run was long)."""
    table = Table(title=title)
    for name in ("epoch", "train cost", "train acc", "val acc", "test acc", "seconds"):
        table.add_column(name, justify="right")
    shown = history if len(history) <= 12 else history[:3] + history[-8:]
    for i, row in enumerate(shown):
        if len(history) > 12 and i == 3:
            table.add_row("…", "", "", "", "", "")
        accuracies = (train_metric(row, "accuracy"), row["validation_accuracy"], row["test_accuracy"])
        table.add_row(str(row["epoch"]), f"{train_metric(row):.4g}", *map(cell, accuracies),
                      f"{row['epoch_seconds']:.3f}")
    if history and history[-1].get("train_cost") is None:
        table.caption = "train cost and acc: running means over each epoch's mini-batches (--measure full: exact)"
    return table


def cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


class SweepProgress:
    """Two rich progress bars for ``run_sweep``: configs done, and epochs of the group now training."""

    def __init__(self, console: Console | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[note]}"),
                                 console=console or Console(stderr=True))
        self.configs = self.epochs = None

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.configs is not None:
            self.progress.stop()

    def start(self, n_configs: int, done: int) -> None:
        self.progress.start()  # only now: an error before training (a refused login) stays one line on stderr
        self.configs = self.progress.add_task("configs", total=n_configs, completed=done,
                                              note=f"{done} already done" if done else "")

    def group(self, n: int, epochs: int) -> None:
        if self.epochs is not None:
            self.progress.remove_task(self.epochs)
        self.epochs = self.progress.add_task(f"  {n} configs together", total=epochs, note="")

    def epoch(self, index: int, metrics: dict) -> None:
        task = self.progress.tasks[-1]
        if metrics["epoch"] > task.completed:
            self.progress.update(self.epochs, completed=metrics["epoch"], note=format_metrics(metrics))

    def config_done(self) -> None:
        self.progress.advance(self.configs)


def sweep_timing(result) -> str:
    """Where a sweep's wall time went, in one line (or why nothing ran)."""
    s = result.seconds
    if result.already_finished:
        return f"nothing to resume: the newest sweep of this spec finished ({len(result.rows)} configs)"
    return (f"{len(result.rows)} configs in {s['total']:.1f} s: training {s['training']:.1f} s, checkpoints and "
            f"BP vs jax.grad {s['finishing']:.1f} s, MLflow calls {s['logging']:.1f} s "
            f"({s['logging'] / s['total']:.1%}), figures {s['plotting']:.1f} s")


def sweep_table(result, metric: str, limit: int = 20) -> Table:
    """The ranked configs of a finished sweep, best first: every split's final accuracy and cost (the spec's
    metric in bold, marked ▲ when higher is better, ▼ when lower), the epochs each ran, and its status."""
    table = Table(title=f"ranked by final {metric} (best first)", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("config", min_width=12)
    table.add_column("sizes", justify="right", no_wrap=True)
    # the training split's numbers are the whole split's where measured (measure = "full"), else the running ones
    running = all(row.final.get("train_accuracy") is None for row in result.rows)
    keys = [f"{split}_{kind}" + ("_running" if split == "train" and running else "")
            for split in ("validation", "test", "train") for kind in ("accuracy", "cost")]
    for key in keys:
        split, kind = key.split("_")[:2]
        chosen = key == metric
        label = f"{'val' if split == 'validation' else split}\n{'acc' if kind == 'accuracy' else kind}"
        label += "*" if key.endswith("_running") else ""
        table.add_column(label + (" ▼" if kind == "cost" else " ▲") * chosen, justify="right", no_wrap=True,
                         style="bold" if chosen else None, header_style="bold" if chosen else None)
    table.add_column("epochs", justify="right")
    table.add_column("status", no_wrap=True)
    for rank, row in enumerate(result.rows[:limit], start=1):
        table.add_row(str(rank), row.name, row.sizes, *(cell(row.final.get(k)) for k in keys),
                      "—" if row.epochs is None else str(row.epochs), row.status or "")
    notes = ["* running mean over the last epoch's mini-batches (measure = \"full\": the whole split)"] * running
    if len(result.rows) > limit:
        notes.append(f"… and {len(result.rows) - limit} more in results.csv of the parent run")
    table.caption = "\n".join(notes) or None
    return table
