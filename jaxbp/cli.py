"""The ``jaxbp`` command line: parses options and calls the library; nothing else lives here.

What it is for: ``jaxbp gradcheck`` (and the commands of later issues), one-line errors with exit status 2.
What it is not: no maths, no training logic; every number printed comes from a library function.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

app = typer.Typer(
    name="jaxbp",
    help="Backpropagation as the four fundamental equations (BP1–BP4), in JAX, checked against jax.grad.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    sizes: str = typer.Option("784,30,10", help="Layer widths n_0,...,n_L (e.g. 784,30,10)."),
    activation: str = typer.Option("sigmoid", help="Hidden activation σ."),
    output_activation: Optional[str] = typer.Option(None, help="Output activation (default: the hidden one)."),
    cost: str = typer.Option("quadratic", help="Cost: quadratic, cross_entropy, log_likelihood."),
    init: str = typer.Option("normal", help="Init scheme: normal, scaled, uniform, glorot, he."),
    batch_size: int = typer.Option(16, min=1, help="Examples in the checked mini-batch."),
    seed: int = typer.Option(0, help="PRNG seed for the parameters, the batch and the sampled weights."),
    dtype: str = typer.Option("float64", help="float64 (default, for tight checks) or float32."),
    rtol: Optional[float] = typer.Option(None, help="Tolerance of BP vs jax.grad [default: 1e-10 f64, 1e-5 f32]."),
    fd_rtol: Optional[float] = typer.Option(None, help="Tolerance of the numerical checks [default: 1e-6 f64, 3e-2 f32]."),
    samples: int = typer.Option(32, min=1, help="Weights and biases per layer checked by finite differences."),
):
    """Check BP1–BP4 on one batch: against jax.grad, finite differences, and the angel's δ = ∂C/∂net.

    Prints one row per layer and exits with status 1 if any error exceeds its tolerance."""
    from jaxbp import reporting

    ok = reporting.run_gradcheck(
        sizes=parse_sizes(sizes), activation=activation, output_activation=output_activation, cost=cost,
        init=init, batch_size=batch_size, seed=seed, dtype=dtype, rtol=rtol, fd_rtol=fd_rtol, samples=samples,
    )
    raise typer.Exit(0 if ok else 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input becomes one line on stderr and exit status 2 (JAXBP_DEBUG=1 shows tracebacks)."""
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
    except (ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("JAXBP_DEBUG"):
            raise
        print(f"jaxbp: error: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
