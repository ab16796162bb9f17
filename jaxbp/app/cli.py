"""The ``jaxbp`` command line: parses options and calls the library; nothing else lives here.

What it is for: ``jaxbp gradcheck | train | evaluate | sweep | ui | batch | plot | server | migrate-store``; bad
input becomes one line on stderr and exit status 2.
What it is not: no maths, no training logic; every number printed comes from a library function.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from jaxbp.core import names
from jaxbp.training.caches import use_compilation_cache
from jaxbp.training.config import DTYPES, GRADIENTS, OPTIMIZERS, SCHEDULES, TrainConfig

app = typer.Typer(
    name="jaxbp",
    help="Backpropagation as the four fundamental equations (BP1–BP4), in JAX, checked against jax.grad.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _list(options) -> str:
    return ", ".join(options)


@app.callback()
def _root() -> None:
    """Backpropagation as the four fundamental equations (BP1–BP4), in JAX, checked against jax.grad."""


def parse_sizes(text: str) -> list[int]:
    """'784,30,10' or '784-30-10' → [784, 30, 10]."""
    parts = text.replace("-", ",").split(",")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--sizes must be layer widths such as 784,30,10, got {text!r}") from None


@app.command()
def gradcheck(
    sizes: Optional[str] = typer.Option(None, help="Layer widths n_0,...,n_L, e.g. 784,30,10 (default: 784,30,10, or n_in,30,n_classes of --dataset)."),
    activation: str = typer.Option("sigmoid", help=f"Hidden activation σ: {_list(names.HIDDEN_ACTIVATIONS)}."),
    output_activation: Optional[str] = typer.Option(None, help="Output activation, e.g. softmax (default: the hidden one)."),
    cost: str = typer.Option("quadratic", help=f"Cost: {_list(names.COSTS)}."),
    init: str = typer.Option("normal", help=f"Init scheme: {_list(names.INIT_SCHEMES)}."),
    batch_size: int = typer.Option(16, min=1, help="Examples in the checked mini-batch."),
    seed: int = typer.Option(0, help="PRNG seed for the parameters, the batch and the sampled weights."),
    dtype: str = typer.Option("float64", help=f"{_list(DTYPES)} (float64 by default, for tight checks)."),
    rtol: Optional[float] = typer.Option(None, help="Tolerance of BP vs jax.grad (default: 1e-10 f64, 1e-5 f32)."),
    fd_rtol: Optional[float] = typer.Option(None, help="Tolerance of the numerical checks (default: 1e-6 f64, 3e-2 f32)."),
    samples: int = typer.Option(32, min=1, help="Weights and biases per layer checked by finite differences."),
    dataset: Optional[str] = typer.Option(None, help="Check on the first --batch-size training examples of this dataset (digits, fashion-mnist, …) instead of random inputs."),
):
    """Check BP1–BP4 on one batch: against jax.grad, finite differences, and the angel's δ = ∂C/∂net.

    Prints one row per layer and exits with status 1 if any error exceeds its tolerance."""
    from jaxbp.app import commands

    ok = commands.run_gradcheck(
        sizes=sizes and parse_sizes(sizes), activation=activation, output_activation=output_activation, cost=cost,
        init=init, batch_size=batch_size, seed=seed, dtype=dtype, rtol=rtol, fd_rtol=fd_rtol, samples=samples,
        dataset=dataset,
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def explain(
    sizes: Optional[str] = typer.Option(None, help="Layer widths n_0,...,n_L (default: 2,3,2, or n_in,3,n_classes of --dataset)."),
    activation: Optional[str] = typer.Option(None, help=f"Hidden activation σ (default sigmoid): {_list(names.HIDDEN_ACTIVATIONS)}."),
    output_activation: Optional[str] = typer.Option(None, help="Output activation, e.g. softmax (default: the hidden one)."),
    cost: Optional[str] = typer.Option(None, help=f"Cost (default quadratic): {_list(names.COSTS)}."),
    init: Optional[str] = typer.Option(None, help=f"Init scheme of the fresh network (default normal): {_list(names.INIT_SCHEMES)}."),
    seed: Optional[int] = typer.Option(None, help="Seed of the fresh network and of random inputs (default 0)."),
    dataset: Optional[str] = typer.Option(None, help="Explain training examples of this dataset (digits, fashion-mnist, xor, …) instead of random inputs."),
    example: Optional[int] = typer.Option(None, min=0, help="Index of the (first) training example of --dataset (default 0)."),
    batch: int = typer.Option(1, min=1, help="Examples in the step, m (default 1: one example)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Explain this trained network (jaxbp train --checkpoint, or a sweep child's checkpoint.msgpack)."),
    eta: Optional[float] = typer.Option(None, help="Learning rate η (default 3, or the checkpoint's)."),
    dtype: Optional[str] = typer.Option(None, help="float64 (default) or float32 (default for a checkpoint: its own)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the walk-through as Markdown with LaTeX ($…$, $$…$$) instead."),
    html: Optional[Path] = typer.Option(None, help="Write one self-contained HTML page: the network as an SVG, the equations of each neuron and weight on hover/click."),
    json_output: bool = typer.Option(False, "--json", help="Print every number of the trace as JSON instead."),
):
    """One step of Algorithm 5.3 with every number: feedforward, BP1, BP2, BP3, BP4, the update, C before and
    after, and the angel's check of each δ (nudge net^l_j by ±Δ, measure ΔC/Δ)."""
    from jaxbp.app.explain import run_explain

    options = dict(sizes=sizes and parse_sizes(sizes), activation=activation, output_activation=output_activation,
                   cost=cost, init=init, seed=seed, dtype=dtype)
    run_explain(options, dataset=dataset, example=example, batch=batch, checkpoint=checkpoint, eta=eta,
                markdown=markdown, html=html, json_output=json_output)


_D = {f.name: f.default for f in dataclasses.fields(TrainConfig)}  # the defaults, kept in one place (no jax needed)


@app.command()
def train(
    dataset: str = typer.Option("digits", help="digits, fashion-mnist, mnist, xor, moons, circle, gauss, spiral, or a folder of IDX files."),
    validation: Optional[float] = typer.Option(None, help="Validation examples taken from training: a count, or a fraction < 1 (default: per dataset)."),
    sizes: Optional[str] = typer.Option(None, help="Layer widths, e.g. 784,30,10 (default: n_in,30,n_classes of the dataset)."),
    activation: str = typer.Option(_D["activation"], help=f"Hidden activation: {_list(names.HIDDEN_ACTIVATIONS)}."),
    output_activation: Optional[str] = typer.Option(None, help="Output activation, e.g. softmax (default: the hidden one)."),
    cost: str = typer.Option(_D["cost"], help=f"Cost: {_list(names.COSTS)}."),
    eta: float = typer.Option(_D["eta"], help="Learning rate η."),
    batch_size: int = typer.Option(_D["batch_size"], help="Mini-batch size m."),
    epochs: int = typer.Option(_D["epochs"], help="Epochs."),
    init: str = typer.Option(_D["init"], help=f"Init scheme: {_list(names.INIT_SCHEMES)}."),
    seed: int = typer.Option(_D["seed"], help="Seed of the initial weights (and of the shuffling, unless --data-seed)."),
    data_seed: Optional[int] = typer.Option(None, help="Seed of the mini-batch order alone (default: --seed)."),
    l2: float = typer.Option(_D["l2"], help="L2 weight decay λ (cost term λ/2n Σw²)."),
    optimizer: str = typer.Option(_D["optimizer"], help=f"sgd is Algorithm 5.3; the others are optax's: {_list(OPTIMIZERS)}."),
    schedule: str = typer.Option(_D["schedule"], help=f"η schedule: {_list(SCHEDULES)}."),
    early_stopping: int = typer.Option(_D["early_stopping"], help="Stop after this many epochs without a better validation accuracy (0: off)."),
    gradients: str = typer.Option(_D["gradients"], help=f"{_list(GRADIENTS)}: BP1–BP4, or jax.grad of the same cost."),
    dtype: str = typer.Option(_D["dtype"], help=f"{_list(DTYPES)}."),
    measure: str = typer.Option(_D["measure"], help="running: train cost and accuracy are means over each epoch's mini-batches (no extra pass); full: also on the whole training split after each epoch (one more pass)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Write the trained parameters and config here (msgpack)."),
    json_output: bool = typer.Option(False, "--json", help="Print a machine-readable summary on stdout."),
):
    """Train a network with mini-batch gradient descent (Algorithm 5.3) and report accuracy per epoch."""
    from jaxbp.app import commands

    values = dict(activation=activation, output_activation=output_activation, cost=cost, eta=eta,
                  batch_size=batch_size, epochs=epochs, init=init, seed=seed, data_seed=data_seed, l2=l2,
                  optimizer=optimizer, schedule=schedule, early_stopping=early_stopping, gradients=gradients,
                  dtype=dtype, measure=measure)
    TrainConfig(**values)  # every option checked before the data is read
    summary = commands.run_training(dataset, _validation(validation), sizes and parse_sizes(sizes), values,
                                     checkpoint=checkpoint, json_output=json_output)
    raise typer.Exit(0 if summary["status"] != "diverged" else 1)


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by jaxbp train --checkpoint."),
    dataset: str = typer.Option("digits", help="The dataset to evaluate on (as in jaxbp train)."),
    validation: Optional[float] = typer.Option(None, help="As in jaxbp train."),
    json_output: bool = typer.Option(False, "--json", help="Print a machine-readable summary on stdout."),
):
    """Evaluate a checkpoint: cost and accuracy on every split of a dataset."""
    from jaxbp.app import commands

    commands.run_evaluation(checkpoint, dataset, _validation(validation), json_output=json_output)


@app.command()
def sweep(
    spec: Path = typer.Argument(..., help="A sweep spec (TOML), e.g. experiments/quickstart.toml."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here); a server with users reads $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD."),
    resume: bool = typer.Option(False, "--resume", help="Finish the newest sweep of this spec: keep its finished configs, train only the rest (a finished sweep is shown, not rerun)."),
    port: int = typer.Option(5000, help="Port of `jaxbp ui` used in the printed URLs."),
    executor: str = typer.Option("local", help="local (this process) or ray (one Ray task per group of configs)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address for --executor ray (default: start a local Ray)."),
):
    """Train every config of a sweep spec (same-shape configs as one compiled program) and track them in MLflow.

    A spec's mode may instead search its space, stopping bad configs early: halving, hyperband, pbt or optuna
    (settings in its [search] table; see the README)."""
    from jaxbp.app import commands

    if executor not in ("local", "ray"):
        raise ValueError(f"--executor must be local or ray, got {executor!r}")
    if address and executor != "ray":
        raise ValueError("--address only applies to --executor ray")
    raise typer.Exit(commands.run_sweep_command(spec, tracking_uri, resume, port, executor, address))


@app.command()
def batch(
    specs: list[Path] = typer.Argument(..., help="Sweep specs (TOML), run one after another in this order."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store for every spec (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here); a server with users reads $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Run the other specs when one is invalid or fails (default: stop, and skip the rest)."),
    resume: bool = typer.Option(False, "--resume", help="Run each spec as jaxbp sweep --resume: finish its unfinished sweep (a finished one is reported, not rerun)."),
    log_dir: Path = typer.Option(Path("batch-logs"), help="One log per spec, <log-dir>/<spec stem>.log: progress, ranked table, timings or the error."),
):
    """Run a queue of sweep specs unattended: every spec checked first, a log per spec, a summary table at the end.

    Exit status 0 if every spec finished, 1 if any was invalid, failed or skipped."""
    from jaxbp.app import batch

    raise typer.Exit(batch.run_batch_command(specs, tracking_uri, keep_going=keep_going, resume=resume,
                                              log_dir=log_dir))


@app.command()
def plot(
    run_id: str = typer.Argument(..., help="A config's child run id (as in results.csv or the MLflow UI)."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here); a server with users reads $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD."),
    output: Optional[Path] = typer.Option(None, help="The PNG to write (default: <run id>.png here)."),
    log: bool = typer.Option(False, "--log", help="Also attach it to the run as learning_curves.png (the UI shows it)."),
):
    """Draw one config's learning curves per layer (cost, accuracies, mean |δ^l|, saturated fractions) from MLflow.

    A sweep draws them for its best configs only; this draws any other on demand."""
    from jaxbp.app import commands

    commands.run_plot(run_id, tracking_uri, output or Path(f"{run_id}.png"), log=log)


@app.command()
def ui(
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)."),
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
):
    """Start the MLflow UI (mlflow server) for the store, wait until healthy, print where to look; Ctrl-C stops it."""
    from jaxbp.app import commands

    raise typer.Exit(commands.run_ui(tracking_uri, host, port))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def server(ctx: typer.Context):
    """The team's MLflow tracking server: start it and wait until healthy, or --check one (jaxbp server --help)."""
    from jaxbp.app.server import main as server_main

    raise typer.Exit(server_main(ctx.args))


@app.command("migrate-store")
def migrate_store(
    src: str = typer.Argument(..., help="The store to copy, e.g. sqlite:///mlflow-server/mlflow.db or the .db file itself (stop its server first)."),
    dst: str = typer.Argument(..., help="An empty database, e.g. postgresql+psycopg://mlflow@127.0.0.1:5432/mlflow (its password from $PGPASSFILE)."),
):
    """Copy an MLflow tracking store into another database, e.g. SQLite into PostgreSQL: every experiment, run,
    param, metric history and tag, ids included, in one transaction. The artifacts stay where they are."""
    from jaxbp.app.migrate import run_migrate

    raise typer.Exit(run_migrate(src, dst))


def _validation(value: float | None) -> int | float | None:
    """--validation 5000 means a count, --validation 0.1 a fraction."""
    return int(value) if value is not None and value >= 1 and float(value).is_integer() else value


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input becomes one line on stderr and exit status 2 (JAXBP_DEBUG=1 shows tracebacks).
    Before jax is imported, JAX's persistent compilation cache is turned on (``caches.use_compilation_cache``)."""
    use_compilation_cache()
    try:
        return app(args=argv, prog_name="jaxbp", standalone_mode=False) or 0
    except typer.Exit as stop:
        return stop.exit_code
    except typer.Abort:
        print("jaxbp: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as err:  # usage errors: unknown option, bad value
        if err.format_message():  # empty after the help that no_args_is_help prints
            print(f"jaxbp: error: {err.format_message()}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        if os.environ.get("JAXBP_DEBUG"):
            raise
        print(f"jaxbp: error: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
