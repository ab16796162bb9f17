"""How fast jaxbp starts: ``import jaxbp`` against ``import jax, optax``, and the command line's help.

Each command runs in a fresh Python process, interleaved with the others, ``--repeats`` times (median
reported); its peak memory (max RSS) comes from ``os.wait4``. This script imports nothing heavy itself (a
forked child's peak RSS counts the parent's pages until it execs) and asks a child for the machine header.
Goals (issue 8): ``import jaxbp`` and its equations ≤ 1.3× ``import jax, optax``; ``jaxbp --help`` ≤ 1.0 s.

``--baseline REV`` adds a second table: three commands a newcomer runs first (``jaxbp gradcheck``, ``jaxbp train``
on digits for 2 epochs, ``jaxbp sweep`` of 6 digits configs for 2 epochs into a fresh SQLite store), each in this
tree and in a ``git worktree`` of REV, alternately, in fresh processes with no persistent compilation cache (what
a first run pays: importing, compiling every XLA program, training, logging); the ratio is the median of the
paired ratios. ``--again`` adds a third table: the same three commands, each run twice in one fresh folder, the
second run with the persistent compilation cache the first one filled (the command line keeps one in
``$JAXBP_CACHE/xla``): what every run after the first pays. Run from the repository root:

    .venv/bin/python benchmarks/start_speed.py
    .venv/bin/python benchmarks/start_speed.py --baseline 018473c --repeats 3
    .venv/bin/python benchmarks/start_speed.py --again --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import worktree

PY = sys.executable
JAXBP = str(Path(PY).with_name("jaxbp"))
COMMANDS = {
    "import jax, optax (the anchor)": [PY, "-c", "import jax, optax"],
    "import jaxbp": [PY, "-c", "import jaxbp"],
    "import jaxbp; jaxbp.backprop_batch (the equations)": [PY, "-c", "import jaxbp; jaxbp.backprop_batch"],
    "import jaxbp; jaxbp.train (training)": [PY, "-c", "import jaxbp; jaxbp.train"],
    "import jaxbp; jaxbp.run_sweep (sweeps, MLflow)": [PY, "-c", "import jaxbp; jaxbp.run_sweep"],
    "jaxbp --help": [JAXBP, "--help"],
    "jaxbp train --help": [JAXBP, "train", "--help"],
}


def run_once(command: list[str]) -> tuple[float, float]:
    """(wall seconds, max RSS in MB) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


SWEEP = ('name = "first-run"\ndataset = "digits"\n[base]\nsizes = [64, 30, 10]\nepochs = 2\n'
         '[sweep]\neta = [0.5, 1.0, 3.0]\nhidden = [[20], [30]]\n')
FIRST_RUNS = {
    "jaxbp gradcheck": ["gradcheck"],
    "jaxbp train --dataset digits --epochs 2": ["train", "--dataset", "digits", "--epochs", "2"],
    "jaxbp sweep (6 configs, 2 epochs, SQLite)": ["sweep", "{spec}", "--tracking-uri", "sqlite:///{folder}/mlflow.db"],
}


def timed_runs(root: Path, args: list[str], runs: int = 1) -> list[float]:
    """Wall seconds of ``runs`` runs of ``jaxbp *args`` in turn, with the jaxbp of the tree at ``root``, in one fresh
    folder (spool, MLflow store and $JAXBP_CACHE: a later run finds the compilation cache an earlier one left;
    a user's own JAX cache settings are dropped)."""
    code = f"import sys, jaxbp; assert jaxbp.__file__.startswith({str(root)!r}); from jaxbp.app import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT"))}
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "spec.toml").write_text(SWEEP)
        env.update(PYTHONPATH=str(root), JAXBP_SPOOL=f"{folder}/spool", JAXBP_CACHE=f"{folder}/cache")
        command = [PY, "-c", code, *(a.format(spec=f"{folder}/spec.toml", folder=folder) for a in args)]
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
    return seconds


def first_run(root: Path, args: list[str]) -> float:
    """Wall seconds of ``jaxbp *args`` with the jaxbp of the tree at ``root``, in a fresh folder: a first run."""
    return timed_runs(root, args)[0]


def first_runs(baseline: str, repeats: int) -> None:
    """The second table: FIRST_RUNS here and at ``baseline``, alternately, paired."""
    with worktree(baseline) as tree:
        pairs = {name: [(first_run(Path.cwd(), args), first_run(tree, args)) for _ in range(repeats)]
                 for name, args in FIRST_RUNS.items()}
    print(f"\nfirst runs (no compilation cache), this tree against {baseline}: medians of {repeats} alternating "
          "pairs\n")
    print(f"| command | seconds here | seconds at {baseline} | paired ratio |")
    print("|---|---:|---:|---:|")
    for name, runs in pairs.items():
        here, there = (statistics.median(side) for side in zip(*runs))
        print(f"| `{name}` | {here:.2f} | {there:.2f} | {statistics.median(a / b for a, b in runs):.2f} |")


def again(repeats: int) -> None:
    """The third table: each of FIRST_RUNS twice in one folder, ``repeats`` times, commands interleaved."""
    pairs = {name: [] for name in FIRST_RUNS}
    for _ in range(repeats):
        for name, args in FIRST_RUNS.items():
            pairs[name].append(timed_runs(Path.cwd(), args, runs=2))
    print(f"\nthe run after the first (the compilation cache it left warm): medians of {repeats}\n")
    print("| command | first run (s) | the run after it (s) | paired ratio |")
    print("|---|---:|---:|---:|")
    for name, runs in pairs.items():
        first, second = (statistics.median(side) for side in zip(*runs))
        print(f"| `{name}` | {first:.2f} | {second:.2f} | {statistics.median(b / a for a, b in runs):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default 5).")
    parser.add_argument("--baseline", help="a git revision: also time first runs here against it")
    parser.add_argument("--again", action="store_true", help="also time each first run against the run after it")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be 1 or more, got {args.repeats}")
    header = [PY, "-c", "from machine import machine_header; print(machine_header())"]
    print(subprocess.run(header, cwd=Path(__file__).parent, capture_output=True, text=True, check=True).stdout.strip())
    for command in COMMANDS.values():  # warm the page cache: no cold start in the medians
        run_once(command)
    times = {name: [] for name in COMMANDS}
    memory = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            seconds, mb = run_once(command)
            times[name].append(seconds)
            memory[name].append(mb)
    anchor = statistics.median(times["import jax, optax (the anchor)"])
    print(f"\nmedians of {args.repeats} interleaved runs\n")
    print("| command | seconds | × import jax, optax | max RSS (MB) |")
    print("|---|---:|---:|---:|")
    for name in COMMANDS:
        median = statistics.median(times[name])
        print(f"| `{name}` | {median:.2f} | {median / anchor:.2f} | {statistics.median(memory[name]):.0f} |")
    if args.baseline:
        first_runs(args.baseline, args.repeats)
    if args.again:
        again(args.repeats)


if __name__ == "__main__":
    main()
