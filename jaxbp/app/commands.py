"""The drivers behind ``jaxbp gradcheck/train/evaluate/sweep/ui``: load, call the library, show the result.

What it is for: each command's sequence (check the input, run, print with ``console``, return the exit status),
and the process-wide choices a command makes (64-bit JAX for float64, quiet MLflow and Ray, SIGTERM as Ctrl-C).
What it is not: no maths, no training or tracking logic (the library's), no drawing of tables (``console``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
from rich.console import Console
from rich.table import Table

from jaxbp.app.console import (
    EpochProgress,
    SweepProgress,
    cell,
    gradcheck_table,
    history_table,
    quiet_libraries,
    sweep_table,
    sweep_timing,
)
from jaxbp.core.gradcheck import check_network
from jaxbp.core.types import float_dtype

TOLERANCES = {"float64": (1e-10, 1e-6), "float32": (1e-5, 3e-2)}  # (BP vs jax.grad, numerical checks)


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


def run_training(dataset: str, validation, sizes, values: dict, *, checkpoint=None, json_output=False) -> dict:
    """``jaxbp train``: load the data, train with a progress bar, print the history, save, summarise."""
    from jaxbp.training.checkpoint import save_checkpoint
    from jaxbp.training.config import TrainConfig
    from jaxbp.training.data import load_dataset
    from jaxbp.training.together import train

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
        table.add_row(name, str(row["examples"]), cell(row["cost"]), cell(row["accuracy"]))
    console = Console(stderr=json_output)
    console.print(table)
    summary = {"checkpoint": str(path), "dataset": data.name, "config": ckpt.config.to_dict(), "splits": results}
    if json_output:
        print(json.dumps(summary))
    return summary


def run_sweep_command(spec_path, tracking_uri, resume: bool, port: int, executor: str = "local",
                      address: str | None = None) -> int:
    """``jaxbp sweep``: run with progress bars, then the ranked table and where to look in the UI."""
    from jaxbp.sweeps.run import SweepIncomplete, run_sweep
    from jaxbp.sweeps.search.settings import ADAPTIVE, in_process_only
    from jaxbp.sweeps.spec import load_spec
    from jaxbp.sweeps.tracking import resolve_uri

    spec = load_spec(spec_path)
    quiet_libraries()
    runner = None
    if executor == "ray" and spec.mode in ADAPTIVE:
        raise ValueError(in_process_only(spec.mode))
    if executor == "ray":
        from jaxbp.sweeps.executors.ray import RayExecutor

        runner = RayExecutor(address)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 140)  # a log or a pipe: the ranked table keeps its columns whole
    uri = resolve_uri(tracking_uri)
    served = uri.startswith(("http://", "https://"))  # a tracking server: its own UI is where to look
    try:
        with SweepProgress() as progress:
            result = run_sweep(spec, uri, resume=resume, progress=progress, executor=runner,
                               ui_base=uri.rstrip("/") if served else f"http://127.0.0.1:{port}")
    except SweepIncomplete as err:
        console.print(f"[red]{err}[/]", soft_wrap=True)  # one line, however narrow the terminal
        return 1
    console.print(sweep_table(result, spec.metric))
    console.print(sweep_timing(result))
    ui = "jaxbp ui" + ("" if result.tracking_uri.endswith(f"{Path.cwd() / 'mlflow.db'}") else
                       f" --tracking-uri {result.tracking_uri}") + ("" if port == 5000 else f" --port {port}")
    console.print(f"parent run {result.parent_run_id} in {result.tracking_uri}")
    how = "open" if served else f"[bold]{ui}[/]  then open"
    console.print(f"browse it: {how}\n{result.runs_url}\ncompare view: {result.compare_url}", soft_wrap=True)
    return 0


def run_plot(run_id: str, tracking_uri, output: Path, *, log: bool) -> None:
    """``jaxbp plot``: one config's per-layer learning curves from its metric history in MLflow."""
    quiet_libraries()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from jaxbp.sweeps.results import config_figure
    from jaxbp.sweeps.tracking import check_reachable, resolve_uri

    if output.suffix.lower() != ".png":
        raise ValueError(f"--output must end in .png, got {str(output)!r}")
    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    try:
        path = config_figure(MlflowClient(uri), run_id, output, log=log)
    except MlflowException as err:
        raise ValueError(f"run {run_id!r} not found in {uri} ({err.error_code})") from None
    Console(soft_wrap=True).print(f"wrote {path}" + (f" and attached it to run {run_id}" if log else ""))


def run_ui(tracking_uri, host: str, port: int) -> int:
    """``jaxbp ui``: serve the store with ``mlflow server`` until Ctrl-C."""
    quiet_libraries()
    from jaxbp.app.server import is_loopback
    from jaxbp.app.ui import latest_sweep_urls, start_server, stop_on_sigterm, stop_server, wait_healthy
    from jaxbp.sweeps.tracking import check_reachable, resolve_uri

    if not is_loopback(host):  # no users and passwords here: a shared server is `jaxbp server --auth`
        raise ValueError(f"jaxbp ui serves this machine only, --host {host} is not loopback: share a store with "
                         "`jaxbp server --auth` (services/tracking/README.md)")
    uri = resolve_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"{uri} is already a tracking server: open it in a browser")
    check_reachable(uri)
    console = Console(soft_wrap=True)  # URLs stay on one line, to be copied or parsed
    server = start_server(uri, host=host, port=port)
    base = f"http://{host}:{port}"
    stop_on_sigterm()
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
