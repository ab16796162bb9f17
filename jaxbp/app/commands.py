"""Terminal output of the command line: tables drawn with rich from the library's results.

What it is for: what the commands show: gradcheck and history tables, progress bars for training and sweeps,
the ranked sweep table, and the small drivers behind ``jaxbp train/evaluate/sweep/ui``.
What it is not: no maths and no tracking; it formats and sequences what the library returns.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import jax
from rich.console import Console
from rich.table import Table

from jaxbp.core.gradcheck import GradcheckResult, check_network
from jaxbp.core.types import float_dtype

TOLERANCES = {"float64": (1e-10, 1e-6), "float32": (1e-5, 3e-2)}  # (BP vs jax.grad, numerical checks)


def gradcheck_table(result: GradcheckResult, rtol: float, fd_rtol: float) -> Table:
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


def run_gradcheck(*, sizes, activation, output_activation, cost, init, batch_size, seed, dtype, rtol, fd_rtol,
                  samples, dataset=None) -> bool:
    """Run ``check_network`` and print its table; True when every check is within tolerance.

    With ``dataset``, the batch is the first ``batch_size`` training examples of it, else random inputs;
    ``sizes`` None means 784,30,10, or n_in,30,n_classes of the dataset."""
    if dtype not in TOLERANCES:
        raise ValueError(f"--dtype must be one of: {', '.join(TOLERANCES)}, got {dtype!r}")
    use_dtype(dtype)
    default_rtol, default_fd = TOLERANCES[dtype]
    rtol = default_rtol if rtol is None else positive("--rtol", rtol)
    fd_rtol = default_fd if fd_rtol is None else positive("--fd-rtol", fd_rtol)
    X = Y = None
    if dataset is not None:
        from jaxbp.training.data import load_dataset
        from jaxbp.training.loop import check_dataset

        data = load_dataset(dataset, dtype=dtype)
        sizes = sizes or [data.n_in, 30, data.n_classes]
        check_dataset(sizes, data)
        X, Y = data.train.X[:batch_size], data.train.Y[:batch_size]
    sizes = sizes or [784, 30, 10]
    result = check_network(sizes, activation, output_activation, cost, init, batch_size=batch_size, seed=seed,
                           dtype=dtype, samples=samples, X=X, Y=Y)
    console = Console()
    console.print(gradcheck_table(result, rtol, fd_rtol))
    ok = result.ok(rtol, fd_rtol)
    console.print("[green]all checks passed[/]" if ok else "[red]some checks exceed their tolerance[/]")
    return ok


def use_dtype(dtype: str) -> None:
    """Let JAX compute in ``dtype``: float64 needs 64-bit mode, switched on for this process (float32 is unaffected)."""
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    float_dtype(dtype)


def positive(option: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else one line naming ``option``."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a finite number > 0, got {value!r}")
    return value


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
    parts = [f"cost {metrics['train_cost']:.4g}"]
    for key, label in (("train_accuracy", "train"), ("validation_accuracy", "val"), ("test_accuracy", "test")):
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
        accuracies = (row[f"{split}_accuracy"] for split in ("train", "validation", "test"))
        table.add_row(str(row["epoch"]), f"{row['train_cost']:.4g}", *map(_cell, accuracies),
                      f"{row['epoch_seconds']:.3f}")
    return table


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def run_training(dataset: str, validation, sizes, values: dict, *, checkpoint=None, json_output=False) -> dict:
    """``jaxbp train``: load the data, train with a progress bar, print the history, save, summarise."""
    from jaxbp.training.checkpoint import save_checkpoint
    from jaxbp.training.config import TrainConfig
    from jaxbp.training.data import load_dataset
    from jaxbp.training.loop import train

    use_dtype(values["dtype"])
    data = load_dataset(dataset, validation=validation, seed=values["seed"], dtype=values["dtype"])
    sizes = sizes or [data.n_in, *TrainConfig().sizes[1:-1], data.n_classes]
    config = TrainConfig(sizes=tuple(sizes), **values)
    console = Console(stderr=json_output)
    with EpochProgress(config.epochs, description=f"{data.name} {'-'.join(map(str, sizes))}", console=console) as bar:
        result = train(config, data, callbacks=[bar])
    console.print(history_table(result.history, f"{data.name}: {config.activation}/{config.cost}, η={config.eta}"))
    console.print(("[red]" if result.status == "diverged" else "[green]") + result.message + "[/]")
    summary = summarise(data.name, config, result)
    if checkpoint is not None:
        summary["checkpoint"] = str(save_checkpoint(checkpoint, result.params, config, metrics=summary["final"]))
        console.print(f"checkpoint written to {summary['checkpoint']}")
    if json_output:
        print(json.dumps(summary))
    return summary


def summarise(dataset: str, config, result) -> dict:
    """The machine-readable summary of a run (what ``--json`` prints)."""
    final = {k: v for k, v in result.history[-1].items() if k != "epoch_seconds"}
    validations = [row["validation_accuracy"] for row in result.history if row["validation_accuracy"] is not None]
    return {
        "dataset": dataset, "config": config.to_dict(), "status": result.status, "message": result.message,
        "epochs_run": len(result.history), "final": final,
        "best_validation_accuracy": max(validations) if validations else None,
        "train_seconds": sum(row["epoch_seconds"] for row in result.history),
    }


def run_evaluation(path, dataset: str, validation, *, json_output=False) -> dict:
    """``jaxbp evaluate``: the cost and accuracy of a checkpoint on every split of a dataset."""
    from jaxbp.training.checkpoint import load_checkpoint
    from jaxbp.training.data import load_dataset
    from jaxbp.training.loop import check_dataset, evaluate_splits

    use_dtype("float64")  # a float64 checkpoint needs it; float32 ones are unaffected
    ckpt = load_checkpoint(path)
    data = load_dataset(dataset, validation=validation, dtype=ckpt.config.dtype)
    check_dataset(ckpt.config.sizes, data)
    results = evaluate_splits(ckpt.config, ckpt.params, data)
    table = Table(title=f"{path} on {data.name} ({'-'.join(map(str, ckpt.config.sizes))})")
    for name in ("split", "examples", "cost", "accuracy"):
        table.add_column(name, justify="right")
    for name, row in results.items():
        table.add_row(name, str(row["examples"]), _cell(row["cost"]), _cell(row["accuracy"]))
    console = Console(stderr=json_output)
    console.print(table)
    summary = {"checkpoint": str(path), "dataset": data.name, "config": ckpt.config.to_dict(), "splits": results}
    if json_output:
        print(json.dumps(summary))
    return summary


class SweepProgress:
    """Two rich progress bars for ``run_sweep``: configs done, and epochs of the group now training."""

    def __init__(self, console: Console | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[note]}"),
                                 console=console or Console(stderr=True))
        self.configs = self.epochs = None

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start(self, n_configs: int, done: int) -> None:
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


def sweep_table(result, metric: str, limit: int = 20) -> Table:
    """The ranked configs of a finished sweep, best first."""
    table = Table(title=f"ranked by final {metric} (best first)")
    for name in ("rank", "config", "sizes", metric, "status"):
        table.add_column(name, justify="left" if name == "config" else "right", no_wrap=name != "config")
    for rank, row in enumerate(result.rows[:limit], start=1):
        value = "—" if row["value"] is None else f"{row['value']:.4f}"
        table.add_row(str(rank), row["name"], row["sizes"], value, row["status"] or "")
    if len(result.rows) > limit:
        table.caption = f"… and {len(result.rows) - limit} more in results.csv of the parent run"
    return table


def run_sweep_command(spec_path, tracking_uri, resume: bool, port: int, executor: str = "local",
                      address: str | None = None) -> int:
    """``jaxbp sweep``: run with progress bars, then the ranked table and where to look in the UI."""
    from jaxbp.sweeps.run import SweepIncomplete, run_sweep
    from jaxbp.sweeps.spec import load_spec

    spec = load_spec(spec_path)
    runner = None
    if executor == "ray":
        from jaxbp.sweeps.executors.ray import RayExecutor

        runner = RayExecutor(address)
    console = Console()
    try:
        with SweepProgress() as progress:
            result = run_sweep(spec, tracking_uri, resume=resume, progress=progress, ui_base=f"http://127.0.0.1:{port}",
                               executor=runner)
    except SweepIncomplete as err:
        console.print(f"[red]{err}[/]")
        return 1
    console.print(sweep_table(result, spec.metric))
    s = result.seconds
    if result.already_finished:
        console.print(f"nothing to resume: the newest sweep of this spec finished ({len(result.rows)} configs)")
    else:
        console.print(f"{len(result.rows)} configs in {s['total']:.1f} s: training {s['training']:.1f} s, "
                      f"logging {s['logging']:.1f} s ({s['logging'] / s['total']:.1%}), plots {s['plotting']:.1f} s")
    ui = "jaxbp ui" + ("" if result.tracking_uri.endswith(f"{Path.cwd() / 'mlflow.db'}") else
                       f" --tracking-uri {result.tracking_uri}") + ("" if port == 5000 else f" --port {port}")
    console.print(f"parent run {result.parent_run_id} in {result.tracking_uri}")
    console.print(f"browse it: [bold]{ui}[/]  then open\n{result.compare_url}", soft_wrap=True)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_ui(tracking_uri, host: str, port: int) -> int:
    """``jaxbp ui``: serve the store with ``mlflow server`` until Ctrl-C."""
    from jaxbp.app.ui import latest_sweep_urls, start_server, stop_server, wait_healthy
    from jaxbp.sweeps.tracking import check_reachable, resolve_uri

    uri = resolve_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"{uri} is already a tracking server: open it in a browser")
    check_reachable(uri)
    console = Console(soft_wrap=True)  # URLs stay on one line, to be copied or parsed
    server = start_server(uri, host=host, port=port)
    base = f"http://{host}:{port}"
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops it like Ctrl-C
    try:
        with console.status(f"starting mlflow server for {uri} …"):
            wait_healthy(base, server)
        console.print(f"MLflow UI for {uri}: [bold]{base}[/]")
        for label, url in latest_sweep_urls(uri, base):
            console.print(f"  {label}: {url}")
        console.print("Ctrl-C stops it.")
        server.wait()
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:
        console.print(f"[red]{err}[/]")
        return 1
    finally:
        stop_server(server)
    return 0
