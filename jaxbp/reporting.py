"""Terminal output of the command line: tables drawn with rich from the library's results.

What it is for: turning ``GradcheckResult`` (and later training/sweep results) into readable tables.
What it is not: no computation; it formats what the library returns.
"""

from __future__ import annotations

import jax
from rich.console import Console
from rich.table import Table

from jaxbp.gradcheck import GradcheckResult, check_network
from jaxbp.types import float_dtype

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
    table.caption = f"relative errors per layer; AD = jax.grad, FD = finite differences, angel = ∂C/∂net vs δ.\ntolerances: BP vs AD ≤ {rtol:g}; finite differences and angel ≤ {fd_rtol:g}"
    return table


def run_gradcheck(*, sizes, activation, output_activation, cost, init, batch_size, seed, dtype, rtol, fd_rtol,
                  samples) -> bool:
    """Run ``check_network`` and print its table; True when every check is within tolerance."""
    if dtype not in TOLERANCES:
        raise ValueError(f"--dtype must be one of: {', '.join(TOLERANCES)}, got {dtype!r}")
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    float_dtype(dtype)
    default_rtol, default_fd = TOLERANCES[dtype]
    rtol, fd_rtol = rtol or default_rtol, fd_rtol or default_fd
    result = check_network(sizes, activation, output_activation, cost, init, batch_size=batch_size, seed=seed,
                           dtype=dtype, samples=samples)
    console = Console()
    console.print(gradcheck_table(result, rtol, fd_rtol))
    ok = result.ok(rtol, fd_rtol)
    console.print("[green]all checks passed[/]" if ok else "[red]some checks exceed their tolerance[/]")
    return ok
