"""How fast jaxbp starts: ``import jaxbp`` against ``import jax, optax``, and the command line's help.

Each command runs in a fresh Python process, interleaved with the others, ``--repeats`` times (median
reported); its peak memory (max RSS) comes from ``os.wait4``. This script imports nothing heavy itself (a
forked child's peak RSS counts the parent's pages until it execs) and asks a child for the machine header.
Goals (issue 8): ``import jaxbp`` and its equations ≤ 1.3× ``import jax, optax``; ``jaxbp --help`` ≤ 1.0 s.
Run from the repository root:

    .venv/bin/python benchmarks/start_speed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default 5).")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
