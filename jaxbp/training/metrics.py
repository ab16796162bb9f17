"""What every per-epoch number of a training history means, and which of them is "the" training cost.

What it is for: one place for the meaning of each metric (the README's table says the same; each MLflow child
run carries it in its description) and ``train_metric``, which reads a history row's training cost or
accuracy whichever way it was measured (``TrainConfig.measure``). Importable without jax.
What it is not: no measuring (see ``loop`` and ``cohort``).
"""

from __future__ import annotations

# What every per-epoch number of a history means (the README's table and each MLflow child's description).
METRIC_MEANINGS = {
    "train_cost_running": "mean over the epoch's mini-batches of the cost being minimised, C + (λ/2n)Σ‖w‖², each "
                          "at the parameters its update started from (as Keras reports its loss); no extra "
                          "forward pass",
    "train_accuracy_running": "fraction of the epoch's training examples classified right by the parameters "
                              "their mini-batch's update started from; no extra forward pass",
    "train_cost": "C + (λ/2n)Σ‖w‖² on the whole training split after the epoch (measure = \"full\" only)",
    "train_accuracy": "accuracy on the whole training split after the epoch (measure = \"full\" only)",
    "validation_cost": "C + (λ/2n)Σ‖w‖² on the whole validation split after the epoch",
    "validation_accuracy": "accuracy on the whole validation split after the epoch",
    "test_cost": "C + (λ/2n)Σ‖w‖² on the whole test split after the epoch",
    "test_accuracy": "accuracy on the whole test split after the epoch",
    "epoch_seconds": "wall time of the epoch's updates (of the whole program, when configs train together)",
    "mean_abs_delta_l": "mean |δ^l_j| of layer l over neurons and the first 1000 training examples (each of its "
                        "own loss), after the epoch",
    "saturated_fraction_l": "fraction of (example, neuron) pairs of layer l with |σ'(net^l_j)| < 0.01, after the "
                            "epoch (slow learners by BP1 and BP2)",
    "low_activation_fraction_l": "fraction of (example, neuron) pairs with |a^(l-1)_k| < 0.01, after the epoch "
                                 "(weights that learn slowly by BP4)",
}


TRAIN_COSTS = ("train_cost", "train_cost_running")  # the keys a training cost may be logged under


def train_metric(metrics: dict, what: str = "cost") -> float | None:
    """The training ``what`` ("cost" or "accuracy") of one history row: the whole split's where it was measured
    (``measure="full"``), else the running mean over the epoch's mini-batches; None where neither is there."""
    full = metrics.get(f"train_{what}")
    return full if full is not None else metrics.get(f"train_{what}_running")


def describe(keys) -> str:
    """A Markdown list of what the metrics ``keys`` mean (per-layer ones, such as ``mean_abs_delta_2``, once by
    their pattern), in METRIC_MEANINGS' order; keys it does not know are left out."""
    names = {key if key in METRIC_MEANINGS else key.rsplit("_", 1)[0] + "_l" for key in keys}
    return "\n".join(f"- `{name}`: {meaning}" for name, meaning in METRIC_MEANINGS.items() if name in names)
