"""jaxbp: backpropagation as the four fundamental equations (BP1–BP4), in pure JAX, proven equal to jax.grad."""

from jaxbp.activations import ACTIVATIONS, Activation, get_activation
from jaxbp.autodiff import autodiff_grads
from jaxbp.backprop import (
    backprop,
    backprop_batch,
    backpropagate_error,
    deltas,
    nabla_b,
    nabla_w,
    output_error,
    per_example_grads,
)
from jaxbp.costs import COSTS, Cost, get_cost
from jaxbp.gradcheck import GradReport, angel_check, compare_grads, finite_difference_check, gradcheck
from jaxbp.network import INIT_SCHEMES, feedforward, init_params, mean_cost
from jaxbp.types import Layer, Params

__all__ = [
    "ACTIVATIONS", "COSTS", "INIT_SCHEMES", "Activation", "Cost", "GradReport", "Layer", "Params",
    "angel_check", "autodiff_grads", "backprop", "backprop_batch", "backpropagate_error", "compare_grads",
    "deltas", "feedforward", "finite_difference_check", "get_activation", "get_cost", "gradcheck",
    "init_params", "mean_cost", "nabla_b", "nabla_w", "output_error", "per_example_grads",
]
__version__ = "0.1.0"
