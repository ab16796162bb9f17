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
from jaxbp.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from jaxbp.config import TrainConfig
from jaxbp.costs import COSTS, Cost, get_cost
from jaxbp.data import DATASETS, Dataset, Split, load_dataset
from jaxbp.gradcheck import GradReport, angel_check, compare_grads, finite_difference_check, gradcheck
from jaxbp.network import INIT_SCHEMES, feedforward, init_params, mean_cost
from jaxbp.spec import SweepSpec, load_spec
from jaxbp.sweep import SweepResult, run_sweep
from jaxbp.train import TrainResult, train, train_together
from jaxbp.types import Layer, Params

__all__ = [
    "ACTIVATIONS", "COSTS", "DATASETS", "INIT_SCHEMES", "Activation", "Checkpoint", "Cost", "Dataset",
    "GradReport", "Layer", "Params", "Split", "TrainConfig", "TrainResult", "load_checkpoint", "load_dataset",
    "save_checkpoint", "train", "train_together", "SweepSpec", "SweepResult", "load_spec", "run_sweep",
    "angel_check", "autodiff_grads", "backprop", "backprop_batch", "backpropagate_error", "compare_grads",
    "deltas", "feedforward", "finite_difference_check", "get_activation", "get_cost", "gradcheck",
    "init_params", "mean_cost", "nabla_b", "nabla_w", "output_error", "per_example_grads",
]
__version__ = "0.1.0"
