"""Speed of a sweep: K configs trained together as ONE compiled program against one config trained alone.

What it measures: the wall time of ONE EPOCH of mini-batch SGD on Fashion-MNIST (``jaxbp.load_dataset
("fashion-mnist")``: n = 50000 training examples of 784 inputs), network ``--sizes`` (default [784, 30, 10]),
sigmoid, quadratic cost, m = 10 (5000 steps), float32, init "normal", seed 0, in two programs built by the
very function a sweep and ``jaxbp.train`` use, ``jaxbp.training.together.compile_together``:

1. the sweep: K configs that differ only in η (K values log-spaced over ``ETA_RANGE``, one seed, so all
   draw the same mini-batches) compiled as one program, ``vmap``-ed over configs;
2. one config alone: ``compile_together([config])``, the path ``jaxbp.train`` takes. It is the sweep's
   first config (smallest η), so that after the timings the script can check that this config trains in
   the sweep as it does alone (at a small η float rounding is not amplified over the 5000 steps; the time
   of an epoch does not depend on η).

Each program is compiled before anything is timed (its compile time is printed) and warmed up by one
untimed epoch. A timed epoch is ``program.epoch(params, opt_state, e)`` from the initial parameters,
waited for with ``jax.block_until_ready``; in every repeat (``--repeats``) the K-config epoch and the
one-config epoch run back to back (same epoch number e, so the same shuffle). The table gives for every
K (``--k 8,32,128``): the median epoch time T_K of the sweep, the median T_1 of one config, T_K / K (time
per config in the sweep) and the ratio (T_K / K) / T_1 as the median of the paired per-repeat ratios
(pairing cancels load that drifts during the run; below 1: the sweep is cheaper per config than training
them one after the other). Goal: ratio ≤ ``GOAL_RATIO`` at K = 32.

A sweep also runs ``program.measure(params, opt_state)`` after every epoch (cost and accuracy of every split, and the
per-layer diagnostics, for every config, brought to the host as dicts); its time is measured the same way
(K programs' and one config's, interleaved, on the parameters after one epoch) and reported separately,
together with the per-config time of epoch + measure. Logging is measured on the real runner: ``jaxbp.run_sweep``
of the same K η values (one epoch, ``--log-k``, default 32) into a fresh SQLite store, which reports the wall
time its MLflow calls took (they run on a worker thread while training goes on) and the time spent drawing
the per-config and summary plots, against the sweep's total wall time.

Achieved GFLOP/s of the K-config epoch: the FLOPs of one step are counted from the GEMMs of K networks,

    forward    2·m·Σ_{l=1..L} n_l·n_{l-1}      (net^l = w^l a^{l-1})
    BP4        2·m·Σ_{l=1..L} n_l·n_{l-1}      (∇w^l = δ^l (a^{l-1})ᵀ)
    BP2        2·m·Σ_{l=2..L} n_l·n_{l-1}      (no δ^0 is needed)

so FLOPs/step = K·2·m·(2·Σ_l n_l n_{l-1} + Σ_{l≥2} n_l n_{l-1}); elementwise work (σ, σ', bias, update) is
not counted. It is compared with the GFLOP/s of an N×N @ N×N float32 GEMM under ``jax.jit`` measured in
the same run on the same device (N = ``--gemm-n``, default 4096 on a GPU, 2048 on a CPU), and the
fraction is printed. GPU goal: a K = 256 η-sweep of [784, 100, 10] at ≥ ``GOAL_PEAK_FRACTION`` of that
GEMM rate; check it with ``--sizes 784,100,10 --k 256``.

Run it from the repository root (on CPU or GPU, unchanged):

    .venv/bin/python benchmarks/sweep_speed.py                      # K = 32, default repeats
    .venv/bin/python benchmarks/sweep_speed.py --k 8,32,128         # three sweep sizes
    .venv/bin/python benchmarks/sweep_speed.py --quick              # one repeat, a rough look
    .venv/bin/python benchmarks/sweep_speed.py --sizes 784,100,10 --k 256   # the GPU goal

Caveats: on a shared machine absolute times move with the load; the paired ratio is the robust number. On
a CPU the K-config epoch of a large K (e.g. 128 of [784, 30, 10], whose stacked first-layer weights no longer
fit the caches) is slow: seconds to minutes per epoch. On recent NVIDIA GPUs the epoch and the reference
GEMM both run at JAX's default float32 matmul precision (which may use TF32). The η of the sweep reach
values (up to 10) at which some configs learn badly; that changes nothing in the time of an epoch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from machine import machine_header

import jaxbp
from jaxbp.sweeps.spec import parse_spec
from jaxbp.training.together import compile_together

DATASET = "fashion-mnist"
SIZES = (784, 30, 10)
ACTIVATION, COST = "sigmoid", "quadratic"
BATCH, INIT, SEED = 10, "normal", 0
ETA_RANGE = (0.05, 10.0)  # the sweep's η: K values log-spaced over this range
DEFAULT_K = (32,)
DEFAULT_REPEATS = 5
GOAL_RATIO, GOAL_K = 0.55, 32  # (T_K / K) / T_1 at K = GOAL_K
GOAL_PEAK_FRACTION, GOAL_PEAK_K, GOAL_PEAK_SIZES = 0.30, 256, (784, 100, 10)  # the GPU goal
GEMM_N = {"gpu": 4096, "cpu": 2048}  # by jax.devices()[0].platform; others use the CPU's
GEMM_SAMPLE_SECONDS, GEMM_SAMPLES = 0.1, 5
# max |Δ| allowed between the first config's parameters in the sweep and alone after one epoch: float32 rounding
# gives ~1e-6 on a CPU (more under TF32 on a GPU); a config trained with its neighbour's η differs by ~1e-1
AGREE_TOL = 1e-2


def step_flops(sizes, m: int = BATCH, k: int = 1) -> int:
    """GEMM FLOPs of one SGD step of k networks: k·2·m·(2·Σ n_l n_{l-1} + Σ_{l≥2} n_l n_{l-1})."""
    pairs = [n_out * n_in for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return k * 2 * m * (2 * sum(pairs) + sum(pairs[1:]))


def sweep_etas(k: int) -> list[float]:
    """The sweep's k learning rates, log-spaced over ETA_RANGE (k = 1: the lower end)."""
    return [float(e) for e in np.geomspace(*ETA_RANGE, k)]


def make_config(sizes, eta: float) -> jaxbp.TrainConfig:
    return jaxbp.TrainConfig(sizes=tuple(sizes), activation=ACTIVATION, cost=COST, eta=eta, batch_size=BATCH,
                             epochs=1, init=INIT, seed=SEED, dtype="float32")


def compiled(configs, data):
    """(program, seconds): ``compile_together(configs, data)`` and its wall time (check, init, compile)."""
    start = time.perf_counter()
    program = compile_together(configs, data)
    return program, time.perf_counter() - start


def epoch_seconds(program, e: int) -> tuple[float, tuple]:
    """Wall time of epoch e of ``program`` from its initial parameters, and its (params, opt_state)."""
    start = time.perf_counter()
    out = jax.block_until_ready(program.epoch(program.params, program.opt_state, e))
    return time.perf_counter() - start, out


def measure_seconds(program, params) -> float:
    """Wall time of ``program.measure(params, opt_state)``: every split's evaluation and diagnostics, on the host."""
    start = time.perf_counter()
    program.measure(params, program.opt_state)
    return time.perf_counter() - start


def logging_overhead(k: int, sizes) -> dict:
    """Seconds of a real ``run_sweep`` of k η values (one epoch) into a temporary SQLite store:
    {training, logging, plotting, total}."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["JAXBP_SPOOL"] = f"{tmp}/spool"
        spec = parse_spec({"name": "sweep_speed", "dataset": DATASET,
                           "base": {**make_config(sizes, 1.0).to_dict(), "epochs": 1},
                           "sweep": {"eta": list(sweep_etas(k))}})
        return jaxbp.run_sweep(spec, f"sqlite:///{tmp}/mlflow.db").seconds


def gemm_gflops(n: int) -> float:
    """GFLOP/s of an n³ float32 matmul under jit: median over samples of a loop lasting ≥ GEMM_SAMPLE_SECONDS."""
    ka, kb = jax.random.split(jax.random.key(SEED))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    jax.block_until_ready(matmul(a, b))

    def loop(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(matmul(a, b))
        return time.perf_counter() - start

    calls = 1
    while (elapsed := loop(calls)) < GEMM_SAMPLE_SECONDS:
        calls *= 2
    rates = [2 * n**3 * calls / elapsed] + [2 * n**3 * calls / loop(calls) for _ in range(GEMM_SAMPLES - 1)]
    return statistics.median(rates) / 1e9


def max_abs_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def benchmark_k(k: int, sizes, data, repeats: int) -> dict:
    """Time the k-config program against one config alone (interleaved, ``repeats`` times) and return medians."""
    etas = sweep_etas(k)
    first = 0  # the config timed alone and checked against its row of the sweep
    sweep, compile_k = compiled([make_config(sizes, eta) for eta in etas], data)
    alone, compile_1 = compiled([make_config(sizes, etas[first])], data)
    _, (params_k, _) = epoch_seconds(sweep, 1)  # warm-up, and the parameters measure() is timed on
    _, (params_1, _) = epoch_seconds(alone, 1)
    sweep.measure(params_k, sweep.opt_state)  # warm-up: the first call compiles evaluation and diagnostics
    rows = alone.measure(params_1, alone.opt_state)
    t_k, t_1, m_k, m_1 = [], [], [], []
    for r in range(repeats):
        t_k.append(epoch_seconds(sweep, r + 1)[0])
        t_1.append(epoch_seconds(alone, r + 1)[0])
        m_k.append(measure_seconds(sweep, params_k))
        m_1.append(measure_seconds(alone, params_1))
    # sanity: the first config trains in the sweep as it does alone (float rounding apart)
    take = jax.tree.map(lambda leaf: leaf[first:first + 1], params_k)
    return {
        "k": k, "eta": etas[first], "compile_k": compile_k, "compile_1": compile_1,
        "t_k": statistics.median(t_k), "t_1": statistics.median(t_1),
        "ratio": statistics.median(a / k / b for a, b in zip(t_k, t_1)),
        "m_k": statistics.median(m_k), "m_1": statistics.median(m_1),
        "m_ratio": statistics.median(a / k / b for a, b in zip(m_k, m_1)),
        "total_ratio": statistics.median((a + c) / k / (b + d) for a, b, c, d in zip(t_k, t_1, m_k, m_1)),
        "agree": max_abs_diff(take, params_1),
        "accuracy": rows[0]["train_accuracy"],
    }


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{what} must be positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=lambda s: parse_ints(s, "--k"), default=DEFAULT_K,
                        help="configs per sweep, comma-separated, e.g. 8,32,128 "
                             f"(default {','.join(map(str, DEFAULT_K))})")
    parser.add_argument("--sizes", type=lambda s: parse_ints(s, "--sizes"), default=SIZES,
                        help=f"layer widths (default {','.join(map(str, SIZES))}; "
                             "the GPU goal: 784,100,10 with --k 256)")
    parser.add_argument("--repeats", type=int, help=f"timed epochs per program and K (default {DEFAULT_REPEATS})")
    parser.add_argument("--quick", action="store_true", help="one repeat, a rough look")
    parser.add_argument("--log-k", type=int, default=32,
                        help="K of the real run_sweep that measures logging (default 32; 0: skip)")
    parser.add_argument("--gemm-n", type=int,
                        help="size N of the reference N×N float32 GEMM (default 4096 on GPU, 2048 else)")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else 1 if args.quick else DEFAULT_REPEATS
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.gemm_n is not None and args.gemm_n < 1:
        parser.error("--gemm-n must be at least 1")
    if len(args.sizes) < 2:
        parser.error("--sizes needs at least 2 layers")

    print(machine_header())
    data = jaxbp.load_dataset(DATASET)
    n = data.train.X.shape[0]
    if args.sizes[0] != data.train.X.shape[1] or args.sizes[-1] != data.train.Y.shape[1]:
        parser.error(f"--sizes must start with {data.train.X.shape[1]} and end with {data.train.Y.shape[1]} "
                     f"for {DATASET}")
    n_batches = n // BATCH
    print(f"{DATASET}: n={n} train examples, sizes={list(args.sizes)}, {ACTIVATION}, {COST} cost, m={BATCH} "
          f"({n_batches} steps/epoch), float32, init={INIT}, seed={SEED}; sweep: K η log-spaced "
          f"{ETA_RANGE[0]}..{ETA_RANGE[1]}, one config alone: the sweep's first (smallest) η; median of {repeats} "
          "interleaved repeats, ratios = median of the paired ratios\n", flush=True)

    results = []
    for k in args.k:
        results.append(benchmark_k(k, args.sizes, data, repeats))
        res = results[-1]
        print(f"K={k}: compiled in {res['compile_k']:.1f} s (one config: {res['compile_1']:.1f} s); "
              f"first config (η={res['eta']:.3g}) in the sweep vs alone after one epoch: max |Δparams| "
              f"{res['agree']:.1e}, train accuracy {res['accuracy']:.4f}", flush=True)
        assert res["agree"] <= AGREE_TOL, f"K={k}: the first config differs from its run alone by {res['agree']:.2e}"

    print("\nepoch (the updates; compiled beforehand):\n")
    print("| K | K-config epoch T_K (s) | one config T_1 (s) | per config T_K/K (s) | (T_K/K)/T_1 (paired) |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['k']} | {r['t_k']:.3f} | {r['t_1']:.3f} | {r['t_k'] / r['k']:.4f} | {r['ratio']:.3f} |")

    print("\nafter every epoch: measure(params, opt_state) (cost and accuracy of all splits, diagnostics, "
          "as host dicts):\n")
    print("| K | measure, K configs (s) | measure, one config (s) | per config (s) | per config / one (paired) "
          "| (epoch + measure) per config / one (paired) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['k']} | {r['m_k']:.3f} | {r['m_1']:.3f} | {r['m_k'] / r['k']:.4f} | {r['m_ratio']:.3f} "
              f"| {r['total_ratio']:.3f} |")
    if args.log_k:
        s = logging_overhead(args.log_k, args.sizes)
        print(f"\nlogging, measured on jaxbp.run_sweep of K={args.log_k} η values, one epoch, fresh SQLite store: "
              f"total {s['total']:.1f} s, training {s['training']:.1f} s, MLflow calls {s['logging']:.2f} s "
              f"({s['logging'] / s['total']:.1%} of the wall time; on a worker thread beside training), "
              f"plots {s['plotting']:.1f} s", flush=True)

    gemm_n = args.gemm_n or GEMM_N.get(jax.devices()[0].platform, GEMM_N["cpu"])
    peak = gemm_gflops(gemm_n)
    print(f"\nGFLOP/s of the K-config epoch: FLOPs/step = K·2·m·(2·Σ n_l n_(l-1) + Σ_(l≥2) n_l n_(l-1)) "
          f"= K·{step_flops(args.sizes):,}; reference: {gemm_n}² float32 GEMM {peak:,.1f} GFLOP/s (same run)\n")
    print("| K | FLOPs/step | GFLOP/s | fraction of GEMM rate |")
    print("|---:|---:|---:|---:|")
    for r in results:
        flops = step_flops(args.sizes, k=r["k"])
        r["gflops"] = flops * n_batches / r["t_k"] / 1e9
        print(f"| {r['k']} | {flops:,} | {r['gflops']:,.2f} | {r['gflops'] / peak:.1%} |")

    checks = []
    for r in results:
        if r["k"] == GOAL_K:
            checks.append((f"K={GOAL_K}: (T_K/K)/T_1 = {r['ratio']:.3f} (goal ≤ {GOAL_RATIO})",
                           r["ratio"] <= GOAL_RATIO))
        if r["k"] == GOAL_PEAK_K and tuple(args.sizes) == GOAL_PEAK_SIZES:
            fraction = r["gflops"] / peak
            checks.append((f"K={GOAL_PEAK_K} {list(GOAL_PEAK_SIZES)}: {fraction:.1%} of the GEMM rate "
                           f"(GPU goal ≥ {GOAL_PEAK_FRACTION:.0%}, on {jax.devices()[0].platform})",
                           fraction >= GOAL_PEAK_FRACTION))
    if checks:
        print("\nverdict: " + "; ".join(f"{text} {'PASS' if ok else 'FAIL'}" for text, ok in checks), flush=True)
    else:
        print(f"\nverdict: no goal applies (ratio goal: --k including {GOAL_K}; GPU goal: --sizes "
              f"{','.join(map(str, GOAL_PEAK_SIZES))} --k {GOAL_PEAK_K})", flush=True)


if __name__ == "__main__":
    main()
