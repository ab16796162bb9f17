"""The floor under a sweep's *plain* training step on this machine: its first layer's work alone.

Issue 13 asks, at K = 32 configs of [784, 30, 10] (m = 10, one mini-batch order, Fashion-MNIST), for ≥ 60 % of
the machine's GEMM rate and, through ``run_sweep``, ≤ 0.33 of one config's time per config-epoch. This script
measures a lower bound on the time of any plain step (Algorithm 5.3 step by step: net¹, BP4 and the update of
w¹ in every step) as XLA runs it here, side by side at each K with the step jaxbp runs, which from K = 2 on
defers w¹'s updates over blocks of steps (``jaxbp.training.deferred``) and so is not bound by it:

- **first layer only**: a ``lax.scan`` over mini-batches (Fashion-MNIST's first 10 000 training inputs, m = 10)
  of the first layer's work and nothing else: net = w·x + b, a stand-in error δ = (σ(net) − ½)·σ'(net) (the
  shape and elementwise work of BP2's), ∇w = δ xᵀ (BP4), ∇b (BP3), and the SGD update of w and b with each
  config's own η. The second layer, the cost, the running metrics and the shuffle are left out: a plain step
  does all of this and more, so it cannot be faster;
- **the real epoch**: jaxbp's compiled K-config program (``compile_together``, what ``run_sweep`` trains a group
  with: deferred from K = 2 on), one epoch of 5000 steps, per step;
- **one config through run_sweep**: seconds per config-epoch of a one-config ``run_sweep`` with logging (epochs
  differenced, as ``sweep_speed.py``'s section 2), the issue's denominator.

Bounds on a plain step, per K: GFLOP/s ≤ the step's GEMM FLOPs ÷ the first layer's time (and that as a share
of the 2048² GEMM rate measured in the same run); the run_sweep ratio ≥ the first layer's time per config-epoch
÷ one config's run_sweep time per epoch. Where a bound misses a goal, no plain step reaches it here; the real
step's own GFLOP/s and share are printed beside them.

    .venv/bin/python benchmarks/step_floor.py            # K = 1, 4, 16, 32, 64 (about 4 min on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import statistics

import jax
import jax.numpy as jnp
import sweep_speed as sweep
from machine import machine_header

import jaxbp
from jaxbp.training.together import compile_together

STEPS = 1000  # steps of the first-layer scan (10 000 examples)
GEMM_GOAL_K, GEMM_GOAL = 32, 0.60  # issue 13: K = 32 at ≥ 60 % of the GEMM rate


def first_layer_scan(k: int, X: jax.Array):
    """(jitted scan, its arguments): STEPS first-layer SGD steps of k configs on shared mini-batches X."""
    n1, n0 = sweep.SIZES[1], sweep.SIZES[0]
    w = jax.random.normal(jax.random.key(0), (k, n1, n0), jnp.float32)
    b = jnp.zeros((k, n1), jnp.float32)
    rate = jnp.asarray(sweep.etas(k), jnp.float32) / sweep.BATCH  # η/m per config

    def step(wb, x):
        w, b = wb
        net = jnp.einsum("kjf,mf->kjm", w, x) + b[:, :, None]  # w·a + b, every config on the same batch
        s = jax.nn.sigmoid(net)
        delta = (s - 0.5) * s * (1 - s)  # a stand-in for BP2's δ: the same shape and elementwise work
        grad_w, grad_b = jnp.einsum("kjm,mf->kjf", delta, x), delta.sum(-1)  # BP4, BP3
        return (w - rate[:, None, None] * grad_w, b - rate[:, None] * grad_b), None

    run = jax.jit(lambda w, b, X: jax.lax.scan(step, (w, b), X)[0])
    return run, (w, b, X)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=sweep.parse_ints, default=(1, 4, 16, 32, 64), help="configs (default 1,4,16,32,64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed real epochs per K (default 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be ≥ 1")
    data = jaxbp.load_dataset(sweep.DATASET)
    X = data.train.X[: STEPS * sweep.BATCH].reshape(STEPS, sweep.BATCH, -1)
    n_steps = data.train.X.shape[0] // sweep.BATCH
    print(machine_header(), flush=True)
    gemm = sweep.gemm_gflops(2048)
    alone = sweep.per_config_epoch({"eta": sweep.etas(1)}, 1, sweep.SIZES)
    print(f"2048² GEMM: {gemm:.0f} GFLOP/s; one config through run_sweep: {alone:.4f} s per epoch", flush=True)
    rows = {}
    for k in sorted(args.k):
        run, state = first_layer_scan(k, X)
        floor = sweep.seconds_per_call(run, *state, seconds=0.5) / STEPS
        configs = [jaxbp.TrainConfig(**sweep.base(sweep.SIZES), eta=eta) for eta in sweep.etas(k)]
        program = compile_together(configs, data)
        sweep.epoch_seconds(program, 1)
        real = statistics.median(sweep.epoch_seconds(program, r + 2) for r in range(args.repeats)) / n_steps
        rows[k] = floor, real
        print(f"K={k}: first layer {1e6 * floor / k:.1f} µs, real step {1e6 * real / k:.1f} µs per config-step",
              flush=True)
    print("\n| K | plain step's first layer: µs per config-step | real step: µs per config-step "
          "| plain step: GFLOP/s ≤ | of the GEMM rate ≤ | run_sweep ratio ≥ | real step: GFLOP/s | of the GEMM rate |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, (floor, real) in rows.items():
        flops = sweep.step_flops(sweep.SIZES, sweep.BATCH, k) / 1e9
        print(f"| {k} | {1e6 * floor / k:.1f} | {1e6 * real / k:.1f} | {flops / floor:.0f} "
              f"| {flops / floor / gemm:.0%} | {floor / k * n_steps / alone:.3f} | {flops / real:.0f} "
              f"| {flops / real / gemm:.0%} |")
    for k, goal in sweep.GOALS.items():
        if k in rows:
            print(f"K = {k}: a plain step's run_sweep ratio ≥ {rows[k][0] / k * n_steps / alone:.3f} (goal ≤ {goal})")
    if GEMM_GOAL_K in rows:
        flops = sweep.step_flops(sweep.SIZES, sweep.BATCH, GEMM_GOAL_K) / 1e9 / gemm
        print(f"K = {GEMM_GOAL_K}: a plain step at most {flops / rows[GEMM_GOAL_K][0]:.0%} of the GEMM rate, the real "
              f"step {flops / rows[GEMM_GOAL_K][1]:.0%} (goal ≥ {GEMM_GOAL:.0%})")


if __name__ == "__main__":
    main()
