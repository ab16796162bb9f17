"""Several devices in one process: a sweep's config axis spread over all local devices with ``jax.sharding``.

What it is for: ``config_mesh`` (a 1-D ``Mesh`` named "configs" over the local devices, or None for one
device), ``padded`` (the config count rounded up to a multiple of the device count) and ``shard``/``replicate``
(``jax.device_put`` with a ``NamedSharding``). Each device trains its own configs; the data is replicated,
so the compiled program needs no collective at all.
What it is not: no multi-host setup (see the Ray executor), no data parallelism within one config.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "configs"


def config_mesh() -> Mesh | None:
    """A mesh over every local device along the config axis; None when there is only one device."""
    devices = jax.local_devices()
    return Mesh(np.array(devices), (AXIS,)) if len(devices) > 1 else None


def padded(n_configs: int, mesh: Mesh | None) -> int:
    """``n_configs`` rounded up so that every device gets as many configs (the extra ones are discarded)."""
    return n_configs if mesh is None else -(-n_configs // mesh.size) * mesh.size


def shard(tree, mesh: Mesh | None):
    """Every leaf split along its leading (config) axis over the mesh."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def replicate(tree, mesh: Mesh | None):
    """Every leaf whole on every device."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
