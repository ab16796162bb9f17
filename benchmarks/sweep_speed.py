"""Speed of a sweep as K grows: K configs trained together, through the compiled program alone and through the
path users run (``jaxbp.run_sweep`` with MLflow logging), against one config alone.

What it measures, on Fashion-MNIST (``jaxbp.load_dataset("fashion-mnist")``: n = 50000 training examples of 784
inputs), network ``--sizes`` (default [784, 30, 10]), sigmoid, quadratic cost, m = 10 (5000 steps an epoch),
float32, init "normal", K η values log-spaced over ``ETA_RANGE`` (one seed unless said), for every K of ``--k``
(default 1, 2, 4, …, 256):

1. **The compiled program** (``compile_together``, what a sweep trains a group with): the wall time T_K of one
   epoch of the K-config program, compiled and warmed up first, median of ``--repeats``; every repeat is paired
   with one epoch of the one-config program (the K = 1 program, the path ``jaxbp.train`` takes) run right after
   it, and the ratio (T_K / K) / T_1 is the median of the paired ratios. Achieved GFLOP/s from the GEMMs of K
   networks, FLOPs/step = K·2·m·(2·Σ_l n_l n_(l-1) + Σ_(l≥2) n_l n_(l-1)) (forward, BP4, BP2; elementwise work
   not counted), against the rate of an N×N float32 GEMM under ``jax.jit`` measured in the same run.
2. **The path users run**: ``jaxbp.run_sweep`` of the same K configs into a fresh SQLite store (measuring every
   epoch, logging every config, checkpoints, figures), once with E_lo = 1 epoch and once with E_hi = 1 + d epochs
   (d = max(2, ⌈128/K⌉): at least 128 config-epochs apart; E_lo runs before and after E_hi and the shorter
   counts, see ``per_config_epoch``); the time per config-epoch is (wall(E_hi) − wall(E_lo)) / (d·K), so
   compiling, starting and the end-of-sweep figures drop out. The ratio is that over the same number for K = 1
   (one config through the same path). Groups are not split here
   (``$JAXBP_CHUNK=off``) so that the curve shows the program as it grows; the auto-chunked row (``--chunked``,
   default the largest K) shows what a sweep does by default: the group is split into chunks of the size the
   library measured cheapest on this machine (``jaxbp.training.chunks``; the measurement, once per machine and
   shape, is reported apart and is not in the row).
3. **The quickstart's shape**: K = ``--shape-k`` (16) configs as 8 η × 2 seeds through ``run_sweep``, with
   ``data_seed = 0`` (the seeds vary the initial weights only: one mini-batch order, one GEMM per first-layer
   product) and without (each seed its own order), against a one-seed sweep of the same K, in
   ``--shape-repeats`` interleaved rounds (medians).
4. **One config, this tree against ``--baseline``** (a git revision, default the commit before issue 13's
   changes): ``jaxbp.train`` of one config for 2 epochs in a fresh process of each tree (a ``git worktree`` of
   the baseline), ``--train-repeats`` alternating pairs; the ratio is the median of the paired ratios of the
   training wall time (data loading, imports excluded).

Goals (issue 13): run_sweep K = 16 ≤ 0.40 and K = 32 ≤ 0.33 of one config per config-epoch; the quickstart's
shape within ± 0.05 of the one-seed ratio; K = 32 at ≥ 60 % of the GEMM rate; one config ≤ 1.0× the baseline.
The plot (``--plot``, default docs/sweep_speed.png) shows time per config-epoch and GFLOP/s against K.

    .venv/bin/python benchmarks/sweep_speed.py                    # everything (about 30 min on 2 CPU cores)
    .venv/bin/python benchmarks/sweep_speed.py --k 1,16,32 --skip-baseline   # the goals' rows only
    .venv/bin/python benchmarks/sweep_speed.py --sizes 784,100,10 --k 1,256  # the GPU rows

Caveats: on a shared machine absolute times move with the load; the paired ratios are the robust numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from baseline import worktree
from machine import machine_header

import jaxbp
from jaxbp.sweeps.spec import parse_spec
from jaxbp.training import chunks
from jaxbp.training.together import compile_together

DATASET, SIZES, BATCH, SEED = "fashion-mnist", (784, 30, 10), 10, 0
ETA_RANGE = (0.05, 10.0)
DEFAULT_K = tuple(2**i for i in range(9))
BASELINE = "84cc854"  # the last commit before issue 13 changed the training loop
GOALS = {16: 0.40, 32: 0.33}  # run_sweep (T_K/K)/T_1
GOAL_SHAPE, GOAL_PEAK_K, GOAL_PEAK_FRACTION = 0.05, 32, 0.60
GEMM_N = {"gpu": 4096, "cpu": 2048}


def step_flops(sizes, m: int = BATCH, k: int = 1) -> int:
    """GEMM FLOPs of one SGD step of k networks: k·2·m·(2·Σ n_l n_{l-1} + Σ_{l≥2} n_l n_{l-1})."""
    return k * 2 * m * (2 * weight_count(sizes) + weight_count(sizes[1:]))


def etas(k: int) -> list[float]:
    return [float(e) for e in np.geomspace(*ETA_RANGE, k)]


def base(sizes, epochs: int = 1) -> dict:
    return {"sizes": list(sizes), "activation": "sigmoid", "cost": "quadratic", "batch_size": BATCH,
            "epochs": epochs, "init": "normal", "seed": SEED, "dtype": "float32"}


def seconds_per_call(fn, *args, seconds: float = 0.1, samples: int = 5) -> float:
    """Median seconds of one ``fn(*args)`` (jitted, warmed up), over samples of a loop lasting ≥ ``seconds``."""
    jax.block_until_ready(fn(*args))

    def loop(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(fn(*args))
        return time.perf_counter() - start

    calls = 1
    while loop(calls) < seconds:
        calls *= 2
    return statistics.median(loop(calls) / calls for _ in range(samples))


def gemm_gflops(n: int) -> float:
    """GFLOP/s of an n³ float32 matmul under jit."""
    a, b = (jax.random.normal(k, (n, n), jnp.float32) for k in jax.random.split(jax.random.key(SEED)))
    return 2 * n**3 / seconds_per_call(jax.jit(jnp.matmul), a, b) / 1e9


UPDATES = 100  # SGD updates per call of the bandwidth loop (amortises the call)


def update_bandwidth(k: int, sizes) -> float:
    """GB/s of the SGD update w ← w − η g on K networks' stacked weights (read w and g, write w), UPDATES in
    one compiled loop: the memory rate the epoch's weight traffic meets at this K (in cache or not)."""
    n = k * weight_count(sizes)
    w, g = (jax.random.normal(key, (n,), jnp.float32) for key in jax.random.split(jax.random.key(SEED)))
    run = jax.jit(lambda w, g: jax.lax.fori_loop(0, UPDATES, lambda _, w: w - 1e-3 * g, w))
    return UPDATES * 3 * 4 * n / seconds_per_call(run, w, g) / 1e9


def weight_count(sizes) -> int:
    """Σ_l n_l n_(l-1): the weights of one network."""
    return sum(n_out * n_in for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def step_bytes(sizes, k: int) -> int:
    """Weight traffic of one SGD step of k networks: the forward reads w, BP4 writes ∇w, the update reads both
    and writes w: 5 float32 passes over the weights (activations and biases are small beside them)."""
    return 5 * 4 * k * weight_count(sizes)


def epoch_seconds(program, e: int) -> float:
    start = time.perf_counter()
    jax.block_until_ready(program.epoch(program.params, program.opt_state, e))
    return time.perf_counter() - start


def program_rows(ks, sizes, data, repeats: int) -> dict[int, dict]:
    """Section 1: {K: {t_k, t_1, ratio, bandwidth}} of the compiled programs, each repeat paired with one
    config's epoch; bandwidth: the update's GB/s at that K."""
    config = lambda eta: jaxbp.TrainConfig(**base(sizes), eta=eta)  # noqa: E731
    alone = compile_together([config(etas(1)[0])], data)
    epoch_seconds(alone, 1)
    rows = {}
    for k in ks:
        program = compile_together([config(eta) for eta in etas(k)], data)
        epoch_seconds(program, 1)
        pairs = [(epoch_seconds(program, r + 2), epoch_seconds(alone, r + 2)) for r in range(repeats)]
        rows[k] = {"t_k": statistics.median(a for a, _ in pairs), "t_1": statistics.median(b for _, b in pairs),
                   "ratio": statistics.median(a / k / b for a, b in pairs), "bandwidth": update_bandwidth(k, sizes)}
        print(f"program K={k}: T_K {rows[k]['t_k']:.3f} s, ratio {rows[k]['ratio']:.3f}", flush=True)
    return rows


def sweep_wall(sweep: dict, epochs: int, sizes, extra: dict) -> float:
    """Wall seconds of one ``run_sweep`` of ``sweep`` (its axes) for ``epochs`` epochs into a fresh SQLite store."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["JAXBP_SPOOL"] = f"{tmp}/spool"
        spec = parse_spec({"name": "sweep_speed", "dataset": DATASET, "base": {**base(sizes, epochs), **extra},
                           "sweep": sweep})
        start = time.perf_counter()
        jaxbp.run_sweep(spec, f"sqlite:///{tmp}/mlflow.db")
        return time.perf_counter() - start


def per_config_epoch(sweep: dict, k: int, sizes, **extra) -> float:
    """Section 2's number: (wall(E_hi) − wall(E_lo)) / (d·K) seconds per config-epoch through run_sweep
    (``extra``: more [base] fields). E_lo runs before and after E_hi and the shorter counts: the process's first
    run_sweep pays a cold start (about 9 s here), and a run of the same sweep took up to 3 s longer than its
    twin, which had made K = 1 too slow and K = 32 faster than its own compiled program."""
    d = max(2, math.ceil(128 / k))
    before = sweep_wall(sweep, 1, sizes, extra)
    hi = sweep_wall(sweep, 1 + d, sizes, extra)
    return (hi - min(before, sweep_wall(sweep, 1, sizes, extra))) / (d * k)


def shape_rows(k: int, sizes, repeats: int) -> dict[str, float]:
    """Section 3: {variant: median seconds per config-epoch} of k configs through run_sweep as k η (one seed),
    k/2 η × 2 seeds on one mini-batch order (data_seed = 0) and the same with each seed its own order, measured
    in ``repeats`` interleaved rounds (one differenced measurement moves by ±0.03 s here), and under "paired
    gap" the median over rounds of (data_seed = 0) − (one seed), the two measured side by side."""
    half = {"eta": etas(k // 2), "seed": [0, 1]}
    variants = {"one seed": ({"eta": etas(k)}, {}), "η × 2 seeds, data_seed = 0": (half, {"data_seed": 0}),
                "η × 2 seeds, own orders": (half, {})}
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (axes, extra) in variants.items():
            times[name].append(per_config_epoch(axes, k, sizes, **extra))
    print("section 3 rounds: " + "; ".join(f"{name} {', '.join(f'{s:.4f}' for s in ts)}" for name, ts in times.items()),
          flush=True)
    gap = statistics.median(a - b for a, b in zip(times["η × 2 seeds, data_seed = 0"], times["one seed"]))
    return {**{name: statistics.median(ts) for name, ts in times.items()}, "paired gap": gap}


def baseline_ratio(rev: str, sizes, repeats: int) -> tuple[float, float, float]:
    """Section 4: (median seconds here, at ``rev``, median paired ratio) of ``jaxbp.train`` of one config."""
    script = ("import sys, time, jaxbp; data = jaxbp.load_dataset('fashion-mnist'); "
              f"config = jaxbp.TrainConfig(sizes={tuple(sizes)}, eta=3.0, epochs=2); jaxbp.train(config, data); "
              "start = time.perf_counter(); jaxbp.train(config, data); "
              "print(time.perf_counter() - start, jaxbp.__file__)")

    def seconds(root: Path) -> float:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, check=True,
                             capture_output=True, text=True).stdout.split()
        assert Path(out[1]).is_relative_to(root), f"imported {out[1]}, not the tree at {root}"
        return float(out[0])

    with worktree(rev) as tree:
        pairs = [(seconds(Path.cwd()), seconds(tree)) for _ in range(repeats)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(a / b for a, b in pairs))


def plot(rows: dict, peak: float, sizes, n_steps: int, path: Path) -> None:
    """Left: seconds per config-epoch against K (program, run_sweep, the auto-chunked sweep, one config alone and
    the run_sweep goals); right: GFLOP/s of the epoch, a plain step's roofline, the GEMM rate and the 60 % goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(rows["program"])
    fig, (time_ax, rate_ax) = plt.subplots(1, 2, figsize=(11.5, 4.4), layout="constrained")
    time_ax.plot(ks, [rows["program"][k]["t_k"] / k for k in ks], "o-", label="compiled program: epoch only")
    if rows["sweep"]:
        sk, one = sorted(rows["sweep"]), rows["sweep"][1]
        time_ax.plot(sk, [rows["sweep"][k] for k in sk], "s-", label="run_sweep: epoch, measure, logging")
        time_ax.axhline(one, color="0.4", ls="--", lw=1, label="one config alone (run_sweep, K = 1)")
        for k, goal in GOALS.items():
            time_ax.plot([k], [goal * one], "v", ms=9, color="C3", label="goal" if k == min(GOALS) else None)
    if rows.get("chunked"):
        k, value, size = rows["chunked"]
        time_ax.plot([k], [value], "*", ms=14, color="C2", label=f"run_sweep, K = {k} in auto chunks of {size}")
    time_ax.set(xscale="log", xlabel="K (configs trained together)", ylabel="seconds per config-epoch", ylim=(0, None),
                title=f"Time per config-epoch, {list(sizes)}, m = {BATCH}")
    time_ax.set_xticks(ks, [str(k) for k in ks])
    time_ax.grid(True, alpha=0.3)
    time_ax.legend(fontsize="small", loc="upper right")
    flops = [step_flops(sizes, k=k) * n_steps / rows["program"][k]["t_k"] / 1e9 for k in ks]
    rate_ax.plot(ks, flops, "o-", label="K-config epoch")
    rate_ax.plot(ks, [step_flops(sizes, k=k) * n_steps / rows["program"][k]["roof"] / 1e9 for k in ks], "^--",
                 color="C1", label="a plain step's roofline (m/5 FLOP/byte × update GB/s)")
    rate_ax.axhline(peak, color="0.3", ls="--", label=f"{GEMM_N['cpu']}² GEMM: {peak:.0f} GFLOP/s")
    rate_ax.axhline(GOAL_PEAK_FRACTION * peak, color="C3", ls=":", label=f"goal: {GOAL_PEAK_FRACTION:.0%} of it")
    rate_ax.set(xscale="log", xlabel="K (configs trained together)", ylabel="GFLOP/s", ylim=(0, peak * 1.45),
                title="Achieved GFLOP/s of the epoch's GEMMs")
    rate_ax.set_xticks(ks, [str(k) for k in ks])
    rate_ax.grid(True, alpha=0.3)
    rate_ax.legend(fontsize="small", loc="upper center", ncols=2)
    fig.suptitle(machine_header(), fontsize="small")
    fig.savefig(path, dpi=110)
    path.with_suffix(".json").write_text(json.dumps({"rows": rows, "peak": peak, "sizes": list(sizes),
                                                     "n_steps": n_steps}, indent=1))
    print(f"\nplot: {path} (its numbers: {path.with_suffix('.json')}; --replot redraws from them)")


def parse_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=parse_ints, default=DEFAULT_K, help="configs per sweep (default 1,2,4,…,256)")
    parser.add_argument("--sizes", type=parse_ints, default=SIZES, help="layer widths (default 784,30,10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per program and K (default 3)")
    parser.add_argument("--no-sweep", action="store_true", help="skip run_sweep (sections 2 and 3)")
    parser.add_argument("--chunked", type=int, help="K of the auto-chunked run_sweep row (default the largest K)")
    parser.add_argument("--shape-k", type=int, default=16, help="K of the quickstart's shape, 8 η × 2 seeds (0: skip)")
    parser.add_argument("--shape-repeats", type=int, default=3,
                        help="interleaved rounds of section 3, medians reported (default 3)")
    parser.add_argument("--baseline", default=BASELINE, help=f"git revision of section 4 (default {BASELINE})")
    parser.add_argument("--train-repeats", type=int, default=3, help="pairs of one-config trainings (default 3)")
    parser.add_argument("--skip-baseline", action="store_true", help="skip section 4")
    parser.add_argument("--plot", type=Path, default=Path("docs/sweep_speed.png"), help="the figure's path")
    parser.add_argument("--replot", type=Path, help="only redraw the plot from a run's JSON (written beside the plot)")
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads(args.replot.read_text())
        rows = {"program": {int(k): v for k, v in saved["rows"]["program"].items()},
                "sweep": {int(k): v for k, v in saved["rows"]["sweep"].items()}, "chunked": saved["rows"]["chunked"]}
        return plot(rows, saved["peak"], saved["sizes"], saved["n_steps"], args.plot)
    if min(args.repeats, args.train_repeats, args.shape_repeats) < 1:
        parser.error("--repeats, --train-repeats and --shape-repeats must be at least 1")
    if args.shape_k and (args.shape_k < 2 or args.shape_k % 2):
        parser.error("--shape-k must be an even number of configs (η × 2 seeds), or 0")
    ks = sorted(set(args.k) | {1})

    print(machine_header())
    data = jaxbp.load_dataset(DATASET)
    if args.sizes[0] != data.n_in or args.sizes[-1] != data.n_classes:
        parser.error(f"--sizes must start with {data.n_in} and end with {data.n_classes} for {DATASET}")
    print(f"{DATASET}: sizes {list(args.sizes)}, sigmoid, quadratic, m = {BATCH}, float32; K η log-spaced "
          f"{ETA_RANGE[0]}..{ETA_RANGE[1]}\n", flush=True)
    peak = gemm_gflops(GEMM_N.get(jax.devices()[0].platform, GEMM_N["cpu"]))
    rows = {"program": program_rows(ks, args.sizes, data, args.repeats), "sweep": {}, "chunked": None}
    shape = {}
    if not args.no_sweep:
        os.environ[chunks.CHUNK_ENV] = "off"
        for k in ks:
            rows["sweep"][k] = per_config_epoch({"eta": etas(k)}, k, args.sizes)
            print(f"run_sweep K={k}: {rows['sweep'][k]:.4f} s per config-epoch", flush=True)
        if args.shape_k:
            shape = shape_rows(args.shape_k, args.sizes, args.shape_repeats)
        del os.environ[chunks.CHUNK_ENV]
        k = args.chunked or max(ks)
        configs = [jaxbp.TrainConfig(**base(args.sizes), eta=eta) for eta in etas(k)]
        start = time.perf_counter()
        size = chunks.chunk_size(configs, data)
        calibration = time.perf_counter() - start
        rows["chunked"] = (k, per_config_epoch({"eta": etas(k)}, k, args.sizes), size)

    n_steps = data.train.X.shape[0] // BATCH
    print(f"\n1. compiled program, one epoch (median of {args.repeats}, paired with one config's epoch); "
          f"{GEMM_N.get(jax.devices()[0].platform, GEMM_N['cpu'])}² float32 GEMM: {peak:.1f} GFLOP/s\n")
    print("| K | T_K (s) | T_1 (s) | T_K/K (s) | (T_K/K)/T_1 | GFLOP/s | of GEMM rate | update GB/s "
          "| roofline T (s) | of roofline |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, r in rows["program"].items():
        gflops = step_flops(args.sizes, k=k) * n_steps / r["t_k"] / 1e9
        r["fraction"] = gflops / peak
        roof = n_steps * max(step_flops(args.sizes, k=k) / (peak * 1e9), step_bytes(args.sizes, k) / (
            r["bandwidth"] * 1e9))
        r["roof"] = roof
        print(f"| {k} | {r['t_k']:.3f} | {r['t_1']:.3f} | {r['t_k'] / k:.4f} | {r['ratio']:.3f} | {gflops:.1f} "
              f"| {r['fraction']:.1%} | {r['bandwidth']:.1f} | {roof:.3f} | {roof / r['t_k']:.1%} |")
    print(f"\nroofline T: ⌊n/m⌋ steps × max(FLOPs/step ÷ GEMM rate, weight bytes/step ÷ update GB/s at that K); "
          f"weight bytes/step = 5 passes × 4 B × K·Σ n_l n_(l-1) (forward reads w, BP4 writes ∇w, the update reads "
          f"both and writes w): arithmetic intensity m/5 = {BATCH / 5:g} FLOP/byte at m = {BATCH}")
    if rows["sweep"]:
        one = rows["sweep"][1]
        print("\n2. run_sweep (measure every epoch, MLflow logging, checkpoints, figures), epochs differenced\n")
        print("| K | seconds per config-epoch | ratio to K = 1 |")
        print("|---:|---:|---:|")
        for k, value in rows["sweep"].items():
            print(f"| {k} | {value:.4f} | {value / one:.3f} |")
        k, value, size = rows["chunked"]
        print(f"| {k}, auto chunks of {size} | {value:.4f} | {value / one:.3f} |")
        print(f"\n(chunk size measured by jaxbp.training.chunks in {calibration:.1f} s, or read from its cache)")
    if shape:
        print(f"\n3. the quickstart's shape, K = {args.shape_k} through run_sweep\n")
        print("| configs | seconds per config-epoch | ratio to K = 1 |")
        print("|---|---:|---:|")
        for name, value in shape.items():
            if name != "paired gap":
                print(f"| {name} | {value:.4f} | {value / rows['sweep'][1]:.3f} |")
        print(f"\npaired gap (median over rounds of data_seed = 0 minus one seed): {shape['paired gap']:+.4f} s, "
              f"{shape['paired gap'] / rows['sweep'][1]:+.3f} in ratio")
    checks = []
    for k, goal in GOALS.items():
        if k in rows["sweep"]:
            ratio = rows["sweep"][k] / rows["sweep"][1]
            checks.append((f"run_sweep K={k}: {ratio:.3f} (goal ≤ {goal})", ratio <= goal))
    if shape:
        gap = abs(shape["paired gap"]) / rows["sweep"][1]
        checks.append((f"η × seeds vs one seed: Δratio {gap:.3f} (goal ≤ {GOAL_SHAPE})", gap <= GOAL_SHAPE))
    if GOAL_PEAK_K in rows["program"] and tuple(args.sizes) == SIZES:
        fraction = rows["program"][GOAL_PEAK_K]["fraction"]
        checks.append((f"K={GOAL_PEAK_K}: {fraction:.1%} of the GEMM rate (goal ≥ {GOAL_PEAK_FRACTION:.0%})",
                       fraction >= GOAL_PEAK_FRACTION))
    if not args.skip_baseline:
        here, there, ratio = baseline_ratio(args.baseline, args.sizes, args.train_repeats)
        print(f"\n4. one config, jaxbp.train for 2 epochs: this tree {here:.2f} s, {args.baseline} {there:.2f} s, "
              f"paired ratio {ratio:.3f}")
        checks.append((f"one config vs {args.baseline}: {ratio:.3f} (goal ≤ 1.0)", ratio <= 1.0))
    plot(rows, peak, args.sizes, n_steps, args.plot)
    print("\nverdict: " + "; ".join(f"{text} {'PASS' if ok else 'FAIL'}" for text, ok in checks))


if __name__ == "__main__":
    main()
