"""One step of Algorithm 5.3 with every number kept: what ``jaxbp explain`` shows a learner.

What it is for: ``explain`` runs one example x (n_in,) or a mini-batch X (m, n_in) through the algorithm in
the lecture's order: feedforward (net^l, a^l), BP1 at the output (with ∇_a C and σ'(net^L) shown), BP2 for
each hidden layer (with (w^{l+1})ᵀ δ^{l+1} and σ'(net^l) shown), BP3 and BP4 (averaged over the batch),
the update w − (η/m) Σ_x δ^{x,l} (a^{x,l−1})ᵀ, b − (η/m) Σ_x δ^{x,l}, and C before and after it. ``angel``
measures ∂C/∂net^l_j of every neuron by nudging net^l_j by ±Δ (the lecture's angel), all neurons in one
compiled, vmapped program. Every number comes from the project's own functions (``errors``,
``backpropagate_error``, ``nabla_b``, ``nabla_w``, ``forward``, ``mean_cost``, the activation's σ' and the
cost's ∇_a C): nothing here is a second implementation of BP1–BP4. Each ``Quantity`` names the equation
that produced it.
What it is not: no rendering (terminal, Markdown, HTML: see ``jaxbp.sweeps.explain_page`` and ``jaxbp.app``),
no training loop (one step of plain SGD, as ``train`` with ``optimizer="sgd"`` and λ = 0 does it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.core import costs
from jaxbp.core.activations import Activation, identity
from jaxbp.core.backprop import backpropagate_error, errors, nabla_b, nabla_w
from jaxbp.core.network import check_data, forward, mean_cost, resolve
from jaxbp.core.types import Array, Layer, Params, layer_sizes

DEFAULT_ETA = 3.0  # TrainConfig's default η (Nielsen ch. 1); a test asserts they agree


@dataclasses.dataclass(frozen=True)
class Quantity:
    """One entry of a trace: its ``value`` (an array), the ``equation`` that produced it ("feedforward",
    "BP1" … "BP4", "update", "cost", "angel") and its ``formula`` in the lecture's notation. Only ``value``
    is a pytree leaf, so a Trace passes through ``jit`` and ``jax.tree.map``; ``np.asarray(q)`` reads it."""

    value: Array
    equation: str
    formula: str

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype)


jax.tree_util.register_dataclass(Quantity, data_fields=["value"], meta_fields=["equation", "formula"])


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Info:
    """What the trace was computed with (static under ``jit``): widths, names, m, Δ, and how BP1 was computed:
    ``bp1`` is "elementwise" (∇_a C ⊙ σ'), "jacobian" (softmax: Jᵀ ∇_a C) or "closed" (σ' cancels, and the
    code uses the closed form of δ^L that costs.py pairs with this output activation)."""

    sizes: tuple[int, ...]
    activation: str
    output_activation: str
    cost: str
    loss: str  # the formula of one example's loss l(x)
    m: int  # examples in the step
    batch: bool  # x was given as a batch (m, n_in)
    bp1: str
    jacobian: bool  # the output activation couples its neurons (softmax): its σ' is the Jacobian J
    step: float  # the angel's Δ
    dtype: str


class LayerTrace(NamedTuple):
    """Everything about layer l (``Trace.layers[l-1]``). Per-example entries have the shape of x's rows:
    (n_l,) for one example, (m, n_l) for a batch (the Jacobian of softmax adds an axis: (…, n_L, n_L))."""

    w: Quantity  # w^l before the step, (n_l, n_{l-1})
    b: Quantity  # b^l before the step
    net: Quantity  # net^l = w^l a^{l-1} + b^l
    a: Quantity  # a^l = σ(net^l)
    upstream: Quantity  # BP1: ∇_a C at the output; BP2: (w^{l+1})ᵀ δ^{l+1}
    sigma_prime: Quantity  # σ'(net^l), or softmax's Jacobian J = ∂a^L/∂net^L
    delta: Quantity  # δ^l of each example's own loss l(x) (BP1 at l = L, BP2 below)
    nabla_b: Quantity  # BP3: ∂C/∂b^l of the mean cost over the step's examples
    nabla_w: Quantity  # BP4: ∂C/∂w^l of the same
    w_new: Quantity  # w^l − η ∂C/∂w^l
    b_new: Quantity  # b^l − η ∂C/∂b^l
    angel: Quantity  # ΔC/Δ measured by nudging net^l_j by ±Δ
    angel_delta: Quantity  # δ of the mean cost C, ∂C/∂net^{x,l}_j = δ^{x,l}_j / m: what the angel measures
    angel_rel: Quantity  # |ΔC/Δ − δ| / max(|ΔC/Δ|, |δ|) per neuron (0 where both are 0)


class Trace(NamedTuple):
    """One step of Algorithm 5.3: the input, the target, every layer, C before and after, η, and ``info``."""

    x: Quantity  # a^0
    y: Quantity
    layers: tuple[LayerTrace, ...]
    cost_before: Quantity
    cost_after: Quantity
    eta: Quantity
    info: Info

    @property
    def params_after(self) -> Params:
        """The parameters after the step, as a network."""
        return tuple(Layer(layer.w_new.value, layer.b_new.value) for layer in self.layers)


# The closed forms of BP1 that costs.py pairs with an output activation, as the learner reads them.
CLOSED_FORMS = {("cross_entropy", "sigmoid"): "δ^L = a^L − y", ("log_likelihood", "softmax"): "δ^L = a^L Σ_i y_i − y"}
LOSSES = {"quadratic": "l(x) = ½‖y − a^L‖²", "cross_entropy": "l(x) = −Σ_j [y_j ln a^L_j + (1 − y_j) ln(1 − a^L_j)]",
          "log_likelihood": "l(x) = −Σ_j y_j ln a^L_j"}


def _step(dtype) -> float:
    """The angel's Δ: eps^(1/3), which balances truncation (Δ²) against rounding (eps/Δ), as ``gradcheck``."""
    return float(jnp.finfo(dtype).eps) ** (1 / 3)


def _slopes(params: Params, x: Array, y: Array, hidden: Activation, output: Activation, cost: costs.Cost,
            step: float) -> tuple[Array, ...]:
    """ΔC/Δ for every neuron of every layer (and every example of a batch), shaped like net^l."""
    nets, _ = forward(params, x, hidden, output)
    m = x.shape[0] if x.ndim == 2 else 1
    slopes = []
    for l, net in enumerate(nets, start=1):
        sigma = output if l == len(params) else hidden

        def losses(net_l, l=l, sigma=sigma):
            """l(x) of each example when layer l's weighted input is ``net_l``: one forward from layer l on."""
            _, a = forward(params[l:], sigma.fn(net_l), hidden, output)
            return cost.fn(a[-1], y)

        nudges = step * jnp.eye(net.shape[-1], dtype=net.dtype)  # row j nudges neuron j (in every example at once)
        up, down = jax.vmap(lambda d, net=net: losses(net + d))(nudges), jax.vmap(lambda d, net=net: losses(net - d))(
            nudges)
        # Example x's loss depends on its own net^{x,l} only, so row j gives each example's Δl(x); C weights it 1/m
        slopes.append(jnp.moveaxis((up - down) / (2 * step * m), 0, -1))
    return tuple(slopes)


def _rel(a: Array, b: Array) -> Array:
    scale = jnp.maximum(jnp.abs(a), jnp.abs(b))
    return jnp.where(scale > 0, jnp.abs(a - b) / jnp.where(scale > 0, scale, 1), 0)


def angel(params: Params, x, y, activation="sigmoid", cost="quadratic", output_activation=None, *,
          step: float | None = None) -> tuple[Array, ...]:
    """The angel's measurement: for every layer l and neuron j, (C(net^l_j + Δ) − C(net^l_j − Δ)) / 2Δ.

    ``x`` is one example (C = l(x)) or a batch (C the mean; each example's net^{x,l}_j is nudged on its own,
    so the slope is ∂C/∂net^{x,l}_j = δ^{x,l}_j / m). Returns one array per layer, shaped like net^l; all
    neurons run as one compiled program (a ``vmap`` over the nudges, one forward from layer l on each)."""
    x, y = check_data(params, x, y)
    hidden, output, cost = resolve(activation, output_activation, cost, y.shape[-1])
    return _jit_slopes(params, x, y, hidden, output, cost, step or _step(x.dtype))


_jit_slopes = jax.jit(_slopes, static_argnums=(3, 4, 5, 6))


def _bp1(cost: costs.Cost, output: Activation) -> str:
    if costs.closed_form_delta(cost, output) is not None:
        return "closed"
    return "elementwise" if output.elementwise else "jacobian"


def _notation(info: Info, L: int):
    """The (equation, formula) of every field of a LayerTrace at layer l."""
    batch = info.m > 1 or info.batch
    sum_x = "(1/m) Σ_x " if batch else ""
    sup = (lambda l: f"{{x,{l}}}") if batch else str  # δ^{x,l} of example x in a batch, δ^l for one example

    def of(l: int) -> dict[str, tuple[str, str]]:
        top = l == L
        sigma = info.output_activation if top else info.activation
        if top and info.bp1 == "jacobian":
            sp = ("BP1", f"J = ∂a^L/∂net^L = diag(a^L) − a^L (a^L)ᵀ ({sigma}: σ' is a Jacobian, not elementwise)")
            delta = ("BP1", "δ^L = Jᵀ ∇_a C")
        elif top and info.bp1 == "closed":
            form = CLOSED_FORMS.get((info.cost, sigma), f"the closed form of {info.cost} with {sigma}")
            what = "σ'(net^L)" if not info.jacobian else f"J = ∂a^L/∂net^L ({sigma}: σ' is a Jacobian)"
            sp = ("BP1", f"{what}, shown only: with {info.cost} and {sigma} it cancels")
            delta = ("BP1", f"{form} (closed form, what the code computes; equal to ∇_a C ⊙ σ'(net^L))")
        else:
            tag = "BP1" if top else "BP2"
            sp = (tag, f"σ'(net^{l})")
            delta = (("BP1", "δ^L = ∇_a C ⊙ σ'(net^L)") if top
                     else ("BP2", f"δ^{l} = ((w^{l + 1})ᵀ δ^{l + 1}) ⊙ σ'(net^{l})"))
        return {
            "w": ("parameters", f"w^{l}"), "b": ("parameters", f"b^{l}"),
            "net": ("feedforward", f"net^{l} = w^{l} a^{l - 1} + b^{l}"),
            "a": ("feedforward", f"a^{l} = {sigma}(net^{l})"),
            "upstream": ("BP1", "∇_a C") if top else ("BP2", f"(w^{l + 1})ᵀ δ^{l + 1}"),
            "sigma_prime": sp, "delta": delta,
            "nabla_b": ("BP3", f"∂C/∂b^{l} = {sum_x}δ^{sup(l)}"),
            "nabla_w": ("BP4", f"∂C/∂w^{l} = {sum_x}δ^{sup(l)} (a^{sup(l - 1)})ᵀ"),
            "w_new": ("update", f"w^{l} − (η/m) Σ_x δ^{{x,{l}}} (a^{{x,{l - 1}}})ᵀ"),
            "b_new": ("update", f"b^{l} − (η/m) Σ_x δ^{{x,{l}}}"),
            "angel": ("angel", f"ΔC/Δ = [C(net^{l}_j + Δ) − C(net^{l}_j − Δ)] / 2Δ"),
            "angel_delta": ("angel", f"∂C/∂net^{{x,{l}}}_j = δ^{{x,{l}}}_j / m" if batch
                            else f"δ^{l}_j = ∂C/∂net^{l}_j"),
            "angel_rel": ("angel", "|ΔC/Δ − δ| / max(|ΔC/Δ|, |δ|)"),
        }

    return of


def _trace(params: Params, x: Array, y: Array, eta: Array, hidden: Activation, output: Activation,
           cost: costs.Cost, step: float) -> Trace:
    L, batch = len(params), x.ndim == 2
    m = x.shape[0] if batch else 1
    nets, _ = forward(params, x, hidden, output)
    a, deltas = errors(params, x, y, hidden, output, cost)  # δ^{x,l} of each example's loss: BP1, then BP2
    # the gradient of the mean cost exactly as backprop/backprop_batch compute it (δ scaled by 1/m, then summed)
    deltas_C = errors(params, x, y, hidden, output, cost, scale=1 / x.shape[0])[1] if batch else deltas
    grads = [Layer(nabla_w(d, a_prev), nabla_b(d)) for d, a_prev in zip(deltas_C, a[:-1])]
    upstream = [cost.nabla_a(a[-1], y) if l == L
                # BP2's first factor, by BP2's own function with σ' = 1
                else backpropagate_error(deltas[l], params[l].w, nets[l - 1], identity) for l in range(1, L + 1)]
    primes = [(output if l == L else hidden).prime(nets[l - 1]) for l in range(1, L + 1)]
    new = [Layer(p.w - eta * g.w, p.b - eta * g.b) for p, g in zip(params, grads)]  # what optax.sgd does, bit for bit
    slopes = _slopes(params, x, y, hidden, output, cost, step)
    info = Info(layer_sizes(params), hidden.name, output.name, cost.name, LOSSES.get(cost.name, f"l(x) ({cost.name})"),
                m, batch, _bp1(cost, output), not output.elementwise, step, jnp.dtype(x.dtype).name)
    notation = _notation(info, L)
    layers = []
    for l in range(1, L + 1):
        values = {"w": params[l - 1].w, "b": params[l - 1].b, "net": nets[l - 1], "a": a[l],
                  "upstream": upstream[l - 1], "sigma_prime": primes[l - 1], "delta": deltas[l - 1],
                  "nabla_b": grads[l - 1].b, "nabla_w": grads[l - 1].w, "w_new": new[l - 1].w, "b_new": new[l - 1].b,
                  "angel": slopes[l - 1], "angel_delta": deltas_C[l - 1],
                  "angel_rel": _rel(slopes[l - 1], deltas_C[l - 1])}
        names = notation(l)
        layers.append(LayerTrace(**{k: Quantity(v, *names[k]) for k, v in values.items()}))
    C = f"C = (1/m) Σ_x l(x), {info.loss}" if batch else f"C = {info.loss}"
    return Trace(
        x=Quantity(x, "input", "a^0 = x"), y=Quantity(y, "target", "y"), layers=tuple(layers),
        cost_before=Quantity(mean_cost(params, x, y, hidden, cost, output), "cost", C + " (before the step)"),
        cost_after=Quantity(mean_cost(tuple(new), x, y, hidden, cost, output), "cost", "C after the step"),
        eta=Quantity(eta, "update", "η"), info=info)


_jit_trace = jax.jit(_trace, static_argnums=(4, 5, 6, 7))


def explain(params: Params, x, y, activation="sigmoid", cost="quadratic", output_activation=None,
            eta=DEFAULT_ETA, *, step: float | None = None) -> Trace:
    """One step of Algorithm 5.3 on one example ``x`` (n_in,) with target ``y`` (n_out,), or on a mini-batch
    ``x`` (m, n_in), ``y`` (m, n_out), with every intermediate number kept (see ``Trace``).

    The gradient is the one ``backprop`` (one example) or ``backprop_batch`` (a batch: of the mean cost)
    gives, and the update is plain SGD at η, as ``train`` with ``optimizer="sgd"`` steps. ``step`` is the
    angel's Δ (default eps^(1/3) of the dtype). Works under ``jit`` (names static)."""
    x, y = check_data(params, x, y)
    hidden, output, cost = resolve(activation, output_activation, cost, y.shape[-1])
    try:
        value = float(np.asarray(eta)) if np.ndim(eta) == 0 else math.nan
    except jax.errors.TracerArrayConversionError:  # under jit: a traced η is the caller's to check
        value = 1.0
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    if step is not None and not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    return _jit_trace(params, x, y, jnp.asarray(eta, x.dtype), hidden, output, cost, step or _step(x.dtype))
