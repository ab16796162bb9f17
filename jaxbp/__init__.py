"""jaxbp: backpropagation as the four fundamental equations (BP1–BP4), in pure JAX, proven equal to jax.grad.

Every public name is loaded on first use (PEP 562, as optax does): ``import jaxbp`` itself imports nothing
heavy, the equations load jax and optax, and only a sweep, tracking or plot name loads MLflow or matplotlib.
The layers, whose imports point one way: ``core`` (the equations) ← ``training`` ← ``sweeps`` ← ``app``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jaxbp")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

# public name -> the module that defines it
_HOME = {
    **dict.fromkeys(("ACTIVATIONS", "Activation", "get_activation"), "jaxbp.core.activations"),
    **dict.fromkeys(("autodiff_grads",), "jaxbp.core.autodiff"),
    **dict.fromkeys(("backprop", "backprop_batch", "backpropagate_error", "deltas", "nabla_b", "nabla_w",
                     "output_error", "per_example_grads"), "jaxbp.core.backprop"),
    **dict.fromkeys(("COSTS", "Cost", "get_cost"), "jaxbp.core.costs"),
    **dict.fromkeys(("Trace", "angel", "explain"), "jaxbp.core.explain"),
    **dict.fromkeys(("GradReport", "angel_check", "compare_grads", "finite_difference_check", "gradcheck"),
                    "jaxbp.core.gradcheck"),
    **dict.fromkeys(("INIT_SCHEMES", "feedforward", "init_params", "mean_cost"), "jaxbp.core.network"),
    **dict.fromkeys(("Layer", "Params"), "jaxbp.core.types"),
    **dict.fromkeys(("Checkpoint", "load_checkpoint", "save_checkpoint"), "jaxbp.training.checkpoint"),
    **dict.fromkeys(("TrainConfig",), "jaxbp.training.config"),
    **dict.fromkeys(("DATASETS", "Dataset", "Split", "load_dataset"), "jaxbp.training.data"),
    **dict.fromkeys(("TrainResult",), "jaxbp.training.loop"),
    **dict.fromkeys(("train", "train_together"), "jaxbp.training.together"),
    **dict.fromkeys(("SweepSpec", "load_spec"), "jaxbp.sweeps.spec"),
    **dict.fromkeys(("SweepResult", "run_sweep"), "jaxbp.sweeps.run"),
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'jaxbp' has no attribute {name!r}")
    try:
        module = importlib.import_module(_HOME[name])
    except ModuleNotFoundError as err:  # a layer whose extra is not installed
        if err.name and err.name.split(".")[0] == "jaxbp":
            raise
        raise ModuleNotFoundError(f"jaxbp.{name} needs {err.name}: pip install 'jaxbp[all]' (or the extra of its "
                                  "layer: train, sweeps, cli)", name=err.name) from None
    value = getattr(module, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
