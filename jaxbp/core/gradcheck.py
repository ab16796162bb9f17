"""Checks that the BP1–BP4 gradients are right: against ``jax.grad``, finite differences and "the angel".

What it is for: ``compare_grads`` (per-layer errors between two gradient pytrees), ``angel_check`` (nudge
net^l_j by ±Δ and compare the change of C with δ^l_j: δ = ∂C/∂net made executable),
``finite_difference_check`` (centred differences on sampled weights and biases), and ``gradcheck``, which
runs all three on one batch for the ``jaxbp gradcheck`` command.
What it is not: not a test suite; it reports numbers and leaves the verdict to ``.ok(rtol)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from jaxbp.core.autodiff import autodiff_grads
from jaxbp.core.backprop import backprop_batch, errors
from jaxbp.core.network import check_data, check_sizes, forward, init_params, mean_cost, resolve
from jaxbp.core.types import Array, Params


@dataclass(frozen=True)
class GradReport:
    """Per-layer errors of a gradient against a reference: ``max_abs[l-1]`` = max |a − b| over w^l and b^l,
    ``rel[l-1]`` = max_abs / max(|a|, |b|) over the same entries (0 where both are 0)."""

    max_abs: tuple[float, ...]
    rel: tuple[float, ...]

    def ok(self, rtol: float = 1e-5) -> bool:
        """True when every layer's relative error is at most ``rtol`` (and none is NaN)."""
        return all(r <= rtol for r in self.rel)

    @property
    def worst(self) -> float:
        return max(self.rel)


def _report(pairs) -> GradReport:
    """GradReport from one (a, b) pair of flat arrays per layer."""
    max_abs, rel = [], []
    for a, b in pairs:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = float(np.max(np.abs(a - b), initial=0.0))
        scale = float(max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0)))
        max_abs.append(err)
        rel.append(err / scale if scale > 0 else (0.0 if err == 0 else float("inf")))
    return GradReport(tuple(max_abs), tuple(rel))


def compare_grads(a: Params, b: Params) -> GradReport:
    """Per-layer max absolute and relative error between two gradients with the same tree structure."""
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        raise ValueError(
            f"gradients must share one tree structure, got {jax.tree_util.tree_structure(a)} "
            f"and {jax.tree_util.tree_structure(b)}"
        )
    for la, lb in zip(a, b):
        for xa, xb in zip(la, lb):
            if xa.shape != xb.shape:
                raise ValueError(f"gradients must share shapes, got {xa.shape} and {xb.shape}")
    return _report((np.concatenate([np.ravel(la.w), np.ravel(la.b)]), np.concatenate([np.ravel(lb.w), np.ravel(lb.b)]))
                   for la, lb in zip(a, b))


def _step(dtype) -> float:
    """Centred-difference step balancing truncation (Δ²) against rounding (eps/Δ): eps^(1/3)."""
    return float(jnp.finfo(dtype).eps) ** (1 / 3)


def angel_check(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None,
                step: float | None = None) -> GradReport:
    """For every example x, layer l and neuron j: (l(net^l_j + Δ) − l(net^l_j − Δ)) / 2Δ against δ^l_j.

    The lecture's demon adds Δ to the weighted input of one neuron; the change of the cost is about
    δ^l_j Δ. Returns per-layer errors of BP's δ against these measured slopes."""
    X, Y = check_data(params, X, Y, batch=True)
    hidden, output, cost = resolve(activation, output_activation, cost, Y.shape[-1])
    step = step or _step(X.dtype)
    L = len(params)

    def loss_after(params: Params, l: int, net_l: Array, y: Array) -> Array:
        """l(x) when layer l's weighted input is ``net_l`` and the layers above follow as usual."""
        sigma = output if l == L else hidden
        _, a = forward(params[l:], sigma.fn(net_l), hidden, output)
        return cost.fn(a[-1], y)

    def one_example(params, x, y):
        nets, _ = forward(params, x, hidden, output)
        slopes = []
        for l, net in enumerate(nets, start=1):
            nudges = step * jnp.eye(net.shape[-1], dtype=net.dtype)  # row j nudges neuron j by Δ
            up = jax.vmap(lambda d, l=l, net=net: loss_after(params, l, net + d, y))(nudges)
            down = jax.vmap(lambda d, l=l, net=net: loss_after(params, l, net - d, y))(nudges)
            slopes.append((up - down) / (2 * step))
        return tuple(slopes)

    @jax.jit  # one program for the nudges and BP's δ (not one small program per operation)
    def measured_and_deltas(params, X, Y):
        return jax.vmap(one_example, in_axes=(None, 0, 0))(params, X, Y), errors(params, X, Y, hidden, output, cost)[1]

    measured, deltas = measured_and_deltas(params, X, Y)
    return _report((m.ravel(), d.ravel()) for m, d in zip(measured, deltas))


def finite_difference_check(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None,
                            *, key: Array, samples: int = 32, step: float | None = None) -> GradReport:
    """Centred differences (C(θ + h) − C(θ − h)) / 2h on up to ``samples`` weights and biases per layer
    (chosen with ``key``; every entry if the layer has fewer), against ``backprop_batch``."""
    X, Y = check_data(params, X, Y, batch=True)
    step = step or _step(X.dtype)
    grads = _jitted_bp(params, X, Y, activation, cost, output_activation)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    grads_flat = np.asarray(jax.flatten_util.ravel_pytree(grads)[0])
    chosen, start = [], 0  # per layer: the indices into the flat parameters that are checked
    for layer, key_l in zip(params, jax.random.split(key, len(params))):
        size = layer.w.size + layer.b.size
        count = min(samples, size)
        chosen.append(start + (np.arange(size) if count == size else
                               np.asarray(jax.random.choice(key_l, size, (count,), replace=False))))
        start += size
    idx = np.concatenate(chosen)
    basis = np.zeros((idx.size, flat.size), flat.dtype)
    basis[np.arange(idx.size), idx] = step

    @jax.jit  # every layer's nudges in one program
    def slopes(flat, basis, X, Y):
        C = lambda theta: mean_cost(unravel(theta), X, Y, activation, cost, output_activation)  # noqa: E731
        return jax.vmap(lambda e: (C(flat + e) - C(flat - e)) / (2 * step))(basis)

    measured = np.split(np.asarray(slopes(flat, basis, X, Y)), np.cumsum([c.size for c in chosen])[:-1])
    return _report(zip(measured, (grads_flat[i] for i in chosen)))


@dataclass(frozen=True)
class GradcheckResult:
    """Everything ``jaxbp gradcheck`` prints: one GradReport per check, each with one entry per layer."""

    sizes: tuple[int, ...]
    autodiff: GradReport
    finite_difference: GradReport
    angel: GradReport

    def ok(self, rtol: float, fd_rtol: float) -> bool:
        return self.autodiff.ok(rtol) and self.finite_difference.ok(fd_rtol) and self.angel.ok(fd_rtol)


_jitted_bp = jax.jit(backprop_batch, static_argnums=(3, 4, 5))
_jitted_ad = jax.jit(autodiff_grads, static_argnums=(3, 4, 5))


def bp_and_autodiff(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None
                    ) -> tuple[Params, Params]:
    """The gradient of the mean cost on (X, Y) by BP1–BP4 and by ``jax.grad``, both under ``jit``."""
    args = (activation, cost, output_activation)
    return _jitted_bp(params, X, Y, *args), _jitted_ad(params, X, Y, *args)


def gradcheck(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None,
              *, key: Array, samples: int = 32) -> GradcheckResult:
    """Run the three checks of BP1–BP4 on one batch: ``jax.grad``, finite differences, the angel."""
    X, Y = check_data(params, X, Y, batch=True)
    args = (activation, cost, output_activation)
    bp, ad = bp_and_autodiff(params, X, Y, *args)
    return GradcheckResult(
        sizes=(params[0].w.shape[1], *(layer.w.shape[0] for layer in params)),
        autodiff=compare_grads(bp, ad),
        finite_difference=finite_difference_check(params, X, Y, *args, key=key, samples=samples),
        angel=angel_check(params, X, Y, *args),
    )


def check_network(sizes, activation="sigmoid", output_activation=None, cost="quadratic", init="normal", *,
                  batch_size: int = 16, seed: int = 0, dtype="float64", samples: int = 32,
                  X=None, Y=None) -> GradcheckResult:
    """``gradcheck`` on a fresh network ``init_params(key(seed), sizes, init, dtype)``.

    The batch is ``X``, ``Y`` when given (cast to ``dtype``); otherwise ``batch_size`` inputs drawn from
    U(0, 1) with one-hot targets of random classes (all from ``seed``)."""
    sizes = check_sizes(sizes)
    resolve(activation, output_activation, cost, sizes[-1])  # refuse bad names before any compute
    k_params, k_x, k_y, k_fd = jax.random.split(jax.random.key(seed), 4)
    params = init_params(k_params, sizes, init, dtype)
    if X is None:
        X = jax.random.uniform(k_x, (batch_size, sizes[0]), params[0].w.dtype)
        Y = jax.nn.one_hot(jax.random.randint(k_y, (batch_size,), 0, sizes[-1]), sizes[-1], dtype=X.dtype)
    return gradcheck(params, X, Y, activation, cost, output_activation, key=k_fd, samples=samples)
