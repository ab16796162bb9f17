"""The names of the core's registries, importable without jax (the command line's help lists them).

What it is for: one place for the names users type; ``activations.ACTIVATIONS``, ``costs.COSTS`` and
``network.INIT_SCHEMES`` are built from the same names (tests assert they agree). What it is not: the
registries themselves (they need jax).
"""

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity")
OUTPUT_ACTIVATIONS = (*HIDDEN_ACTIVATIONS, "softmax")  # softmax only as an output layer
COSTS = ("quadratic", "cross_entropy", "log_likelihood")
INIT_SCHEMES = ("normal", "scaled", "uniform", "glorot", "he")
