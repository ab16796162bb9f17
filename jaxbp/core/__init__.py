"""The equations: types, activations, costs, the network, BP1–BP4, jax.grad of the same cost, and the checks
that compare them. Imports jax and numpy only; nothing here knows about training, sweeps or the app."""
