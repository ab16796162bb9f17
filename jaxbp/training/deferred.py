"""A sweep's epoch with the first layer's updates deferred over blocks of steps: the same SGD, fewer passes over w¹.

What it is for: configs that train together on one mini-batch order (``Cohort``'s one-GEMM case) with plain
SGD. Each step of Algorithm 5.3 reads the stacked w¹ (net¹), writes ∇w¹ (BP4) and reads and writes w¹ again
(the update): at m = 10 those are skinny products that stream every config's w¹ three times per step. Over a
block of B steps whose inputs X_t are known in advance, the same updates can be applied once:

    w¹_t = w¹_0 + Σ_{s<t} U_sᵀ X_s        U_s = −η_s δ¹_s (m × n_1): step s's update, BP4's a⁰ = X_s factored out
    net¹_t = X_t (w¹_t)ᵀ + b¹_t = X_t (w¹_0)ᵀ + Σ_{s<t} (X_t X_sᵀ) U_s + b¹_t

so a block computes X_blk (w¹_0)ᵀ for all its steps in one GEMM (every config's w¹ stacked as one matrix), the
Gram matrix X_blk X_blkᵀ once for all configs (the inputs are shared), steps through its B mini-batches (BP1,
BP2, BP3 and BP4 of the other layers and their updates by optax, ``vmap``-ed over configs; each step's net¹
from the two products above; the steps are unrolled, so step t's sum reads only its t predecessors), and ends
with w¹ ← w¹ + Σ_s U_sᵀ X_s (BP4's sum over the block's examples: one GEMM). Exactly Algorithm 5.3 in exact
arithmetic; in floating point the sums are taken in another order (rounding, not a different rule: tests hold it
to the plain epoch in float64).
What it is not: no other optimizer (only "sgd", whose update −η_t g is linear in g and keeps no per-weight
state, so the η_t of each step comes from optax applied to δ¹ itself), no L2 decay (λ > 0 takes the plain
epoch), no per-config mini-batch orders (their X_t differ: no shared Gram matrix), no autodiff gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxbp.core.backprop import backpropagate_error, errors, nabla_b, nabla_w, output_error
from jaxbp.core.costs import get_cost
from jaxbp.core.network import resolve
from jaxbp.core.types import Layer
from jaxbp.training.config import TrainConfig
from jaxbp.training.loop import Running, correct, mini_batches, targets
from jaxbp.training.optim import make_optimizer

WORK_SHARE = 9  # a block's extra work, at most m·(B·m)·n_1 per step for net¹, is kept to 1/WORK_SHARE of m·n_0·n_1
MAX_STEPS = 8  # the block's steps are unrolled into the program, which grows with B


def block_steps(config: TrainConfig) -> int:
    """B, the steps per block: the most for which each step's share of the deferred sum, Σ_(s<t) (X_t X_sᵀ) U_s,
    is at most 1/WORK_SHARE of the product it replaces (B·m ≤ n_0 / WORK_SHARE), and at most MAX_STEPS. Below 2
    nothing is deferred.

    Measured on 2 CPU cores, [784, 30, 10], m = 10 (the same epoch with ``steps`` given, one process, 9
    interleaved rounds): B = 6, 7, 8 and 10 took 71.7, 70.2, 65.9 and 73.1 ms per config-epoch at K = 32 and
    91.4, 88.5, 87.9 and 81.9 at K = 16 (another run, K = 32: B = 12 81.1 ms, B = 6 74.9). This rule gives 8."""
    return min(MAX_STEPS, config.sizes[0] // (WORK_SHARE * config.batch_size))


def deferrable(config: TrainConfig, *, shared_batches: bool, regularised: bool) -> bool:
    """Whether configs like ``config`` trained together can take the deferred epoch (see the module docstring)."""
    return (shared_batches and not regularised and config.optimizer == "sgd" and config.gradients == "bp"
            and block_steps(config) >= 2)


def transposed_in_memory(delta):
    """``delta`` itself, with its transpose materialised: BP4 (``nabla_w``) sums δᵀ a over δ's leading axis, and
    XLA:CPU hands that product to its GEMM library only with δᵀ in memory; over a config axis it otherwise runs a
    generic loop, 4× slower for the second layer here (measured). One config's products do not need it."""
    return jax.lax.optimization_barrier(delta.T).T


def make_deferred_epoch(config: TrainConfig, n_train: int, steps: int | None = None):
    """epoch(params, opt_state, key, X, Y) -> (params, opt_state, Running) of K configs like ``config`` at once:
    ``params``, ``opt_state`` and the running means with a leading config axis (as a ``Cohort`` stacks them), one
    mini-batch order (``key``) for all. Each config gets what ``loop.make_epoch``'s epoch gives it alone (the
    same mini-batches in the same order, the same running means), with w¹'s updates applied once per block of
    ``steps`` steps (default ``block_steps(config)``). ``deferrable`` says which configs it is for; λ is taken
    to be 0."""
    hidden, output, cost = resolve(config.activation, config.output_activation, config.cost, config.sizes[-1])
    loss = get_cost(config.cost).fn
    m, B = config.batch_size, block_steps(config) if steps is None else steps
    if B < 1:
        raise ValueError(f"a block needs at least one step, got {B} ({config.sizes[0]} inputs, m = {m})")
    n_batches = n_train // m
    tx = make_optimizer(config, n_train, n_batches)

    def deltas_from(net_1, rest, y):
        """(a^L, δ¹, the other layers' (activations, δ)) of one mini-batch whose first weighted input is net¹ and
        whose other layers are ``rest``: the forward pass from a¹ on, BP1 at the output, BP2 down to layer 1."""
        if not rest:  # layer 1 is the output layer
            a_L = output.fn(net_1)
            return a_L, output_error(net_1, a_L, y, cost, output, 1 / m), ((), ())
        a, deltas = errors(rest, hidden.fn(net_1), y, hidden, output, cost, scale=1 / m)
        return a[-1], backpropagate_error(deltas[0], rest[0].w, net_1, hidden), (a[:-1], deltas)

    def step_one(net_1, b_1, rest, opt_state, Y_t, T_t):
        """One config's step from its net¹: (U_t = −η_t δ¹, b¹, the other layers and the state after the update,
        the mini-batch's cost and fraction right)."""
        a_L, delta_1, (a, deltas) = deltas_from(net_1, rest, Y_t)
        # BP3 and BP4 of the other layers; layer 1's w slot carries δ¹ itself, whose update is then −η_t δ¹
        nabla = (Layer(delta_1, nabla_b(delta_1)),
                 *(Layer(nabla_w(transposed_in_memory(d), a_prev), nabla_b(d)) for d, a_prev in zip(deltas, a)))
        updates, opt_state = tx.update(nabla, opt_state, (Layer(jnp.zeros_like(delta_1), b_1), *rest))
        return (updates[0].w, b_1 + updates[0].b, optax.apply_updates(rest, updates[1:]), opt_state,
                jnp.mean(loss(a_L, Y_t)), jnp.mean(correct(a_L, T_t)))

    step_all = jax.vmap(step_one, in_axes=(0, 0, 0, 0, None, None))  # over the config axis

    def block(carry, inputs):
        """B steps of every config, then the block's sum of w¹'s updates."""
        params, opt_state, cost_sum, hit_sum = carry
        X_blk, Y_blk, T_blk = inputs  # (B·m, n_0), (B·m, n_L), (B·m,)
        w_1 = params[0].w  # (K, n_1, n_0)
        K, n_1, n_0 = w_1.shape
        # x (w¹_0)ᵀ of each example for every config (their w¹ as one matrix): net¹ before the block's updates
        base = (w_1.reshape(K * n_1, n_0) @ X_blk.T).T.reshape(-1, K, n_1)
        gram = X_blk @ X_blk.T  # x_t x_sᵀ for every pair of the block's examples (one for all configs)

        b_1, rest, U = params[0].b, tuple(params[1:]), []  # U = [U_0; …; U_(t-1)], each (m, K, n_1)
        for t in range(X_blk.shape[0] // m):  # unrolled (measured: 0.82× the epoch of a scan over the steps at K = 32)
            rows = slice(t * m, (t + 1) * m)
            net_1 = base[rows]
            if t:  # + Σ_(s<t) (X_t X_sᵀ) U_s
                net_1 = net_1 + (gram[rows, : t * m] @ jnp.concatenate(U).reshape(t * m, K * n_1)).reshape(m, K, n_1)
            # net¹ and U_t are (m, K, n_1) where the block's products read and write them, (K, m, n_1) in the step;
            # net¹ is materialised so (measured: 0.89× the epoch at K = 16 and 32): else XLA:CPU carries the transposed
            # layout into the step and the second layer's products leave its GEMM library
            net_1 = jax.lax.optimization_barrier(jnp.swapaxes(net_1, 0, 1)) + b_1[:, None]
            U_t, b_1, rest, opt_state, cost, hit = step_all(net_1, b_1, rest, opt_state, Y_blk[rows], T_blk[rows])
            U.append(jnp.swapaxes(U_t, 0, 1))
            cost_sum, hit_sum = cost_sum + cost, hit_sum + hit
        U = jnp.concatenate(U)
        # w¹ + Σ_s U_sᵀ X_s: the block's updates of w¹, BP4's sum over the block's examples, one GEMM for all configs
        w_1 = w_1 + nabla_w(transposed_in_memory(U.reshape(-1, K * n_1)), X_blk).reshape(K, n_1, n_0)
        return ((Layer(w_1, b_1), *rest), opt_state, cost_sum, hit_sum), None

    def epoch(params, opt_state, key, X, Y):
        order = mini_batches(key, n_train, m).reshape(-1)  # loop.make_epoch's mini-batches, in order
        X_e, Y_e, T_e = X[order], Y[order], targets(Y)[order]
        full = n_batches // B * B * m  # examples in whole blocks; the last n_batches mod B steps are one more block
        zero = jnp.zeros(params[0].b.shape[:1], X.dtype)
        carry = (tuple(params), opt_state, zero, zero)
        if full:
            blocks = (a[:full].reshape(-1, B * m, *a.shape[1:]) for a in (X_e, Y_e, T_e))
            carry = jax.lax.scan(block, carry, tuple(blocks))[0]
        if full < n_batches * m:
            carry = block(carry, (X_e[full:], Y_e[full:], T_e[full:]))[0]
        params, opt_state, cost_sum, hit_sum = carry
        return params, opt_state, Running(cost_sum / n_batches, hit_sum / n_batches)

    return epoch
