"""Cost functions as pairs (l, ∇_a l), looked up by name or passed as objects.

What it is for: the loss l(x) of one example, summed over the output neurons (leading axes are
kept, so a batch gives one value per example), and its gradient ∇_a l that BP1 starts from.
The cost of a data set is the mean C = (1/n) Σ_x l(x) (see ``network.mean_cost``).
What it is not: no autodiff; every ∇_a l is written out by hand.

Each cost may also carry BP1 in closed form for the output activation it is made for, where σ'
cancels analytically (Nielsen ch. 3): cross-entropy with sigmoid gives δ^L = a − y, and the
log-likelihood with softmax gives δ^L = a Σ_i y_i − y (= a − y for one-hot y). These forms are exact
and stay finite where a saturated σ' would make ∇_a l ⊙ σ' into ∞ · 0.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxbp.core import activations as act
from jaxbp.core.types import Array


class Cost(NamedTuple):
    """A cost: ``fn(a, y)`` is l per example, ``nabla_a(a, y)`` is ∇_a l. ``needs_unit_interval`` says the
    output activation must map into (0, 1); ``closed_form`` pairs an output activation with δ^L(a, y)."""

    name: str
    fn: Callable[[Array, Array], Array]
    nabla_a: Callable[[Array, Array], Array]
    needs_unit_interval: bool = False
    closed_form: tuple[tuple[act.Activation, Callable[[Array, Array], Array]], ...] = ()


quadratic = Cost(
    "quadratic",
    lambda a, y: 0.5 * jnp.sum((y - a) ** 2, axis=-1),  # l = ½‖y − a‖²
    lambda a, y: a - y,
)
cross_entropy = Cost(
    "cross_entropy",
    lambda a, y: -jnp.sum(xlogy(y, a) + xlogy(1 - y, 1 - a), axis=-1),  # l = −Σ [y ln a + (1−y) ln(1−a)]
    lambda a, y: (1 - y) / (1 - a) - y / a,  # = (a − y) / (a (1 − a))
    needs_unit_interval=True,
    closed_form=((act.sigmoid, lambda a, y: a - y),),
)
log_likelihood = Cost(
    "log_likelihood",
    lambda a, y: -jnp.sum(xlogy(y, a), axis=-1),  # l = −Σ y ln a  (= −ln a_y for one-hot y)
    lambda a, y: -y / a,
    needs_unit_interval=True,
    closed_form=((act.softmax, lambda a, y: a * jnp.sum(y, axis=-1, keepdims=True) - y),),
)

COSTS = {cost.name: cost for cost in (quadratic, cross_entropy, log_likelihood)}


def get_cost(cost: str | Cost) -> Cost:
    """The ``Cost`` named by ``cost`` (or the object itself)."""
    if isinstance(cost, Cost):
        return cost
    if not isinstance(cost, str):
        raise TypeError(f"cost must be a name or a Cost, got {type(cost).__name__}")
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; expected one of: {', '.join(COSTS)}")
    return COSTS[cost]


def check_pairing(cost: Cost, output: act.Activation, n_out: int) -> None:
    """Refuse an output layer on which ``cost`` is not defined, before anything is computed."""
    if not output.elementwise and n_out < 2:
        raise ValueError(f"{output.name} output needs at least 2 output neurons (over one it is the constant 1), got 1")
    if cost.needs_unit_interval:
        lo, hi = output.bounds if output.bounds else (-float("inf"), float("inf"))
        if lo < 0 or hi > 1:
            fits = [a.name for a in act.ACTIVATIONS.values() if a.bounds and a.bounds[0] >= 0 and a.bounds[1] <= 1]
            raise ValueError(
                f"cost {cost.name} needs outputs in (0, 1) but output activation {output.name} "
                f"ranges over {output.bounds or 'an unknown range'}; use output_activation one of: {', '.join(fits)}"
            )


def closed_form_delta(cost: Cost, output: act.Activation) -> Callable[[Array, Array], Array] | None:
    """δ^L(a, y) in closed form for this cost and output activation, or None."""
    return next((delta for a, delta in cost.closed_form if a == output), None)
