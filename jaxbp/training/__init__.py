"""Training on top of the core: the config, optimizers, datasets, the compiled epoch (alone or many configs
together), several devices, learning diagnostics and checkpoints. Imports the core, jax, optax, flax; never
the sweeps or the app."""
