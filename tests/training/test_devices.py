"""The config axis sharded over 4 forced CPU devices gives the single-device results, with the plain epoch and the
deferred one (run in a subprocess, since the device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxbp.training.devices import config_mesh, padded

SCRIPT = """
import json, jax, jaxbp
jax.config.update("jax_enable_x64", True)
from jaxbp.training.cohort import Cohort
from jaxbp.training.together import compile_together, train_together
data = jaxbp.load_dataset("xor")
configs = [jaxbp.TrainConfig(sizes=(2, 8, 2), eta=e, seed=s, epochs=4, batch_size=4, l2=l)
           for e, s, l in [(0.5, 0, 0.0), (1.0, 1, 1.0), (2.0, 0, 0.0), (3.0, 1, 0.5), (0.2, 0, 0.0), (5.0, 2, 0.0)]]
program = compile_together(configs, data)
w = program.params[0].w
shards = sorted(s.data.shape[0] for s in w.addressable_shards)
results = train_together(configs, data)
# and a group on one mini-batch order with plain SGD, whose epochs defer w¹'s updates (training.deferred), in float64:
# at η = 5 and m = 2 float32's rounding (the GEMMs' blocking differs with the configs per device) grows to 2 %
digits = jaxbp.load_dataset("digits")
deferred = [jaxbp.TrainConfig(sizes=(64, 8, 10), eta=e, seed=s, data_seed=0, epochs=2, batch_size=2,
                               dtype="float64")
            for e, s in [(0.5, 0), (1.0, 1), (2.0, 2), (3.0, 3), (0.2, 4), (5.0, 5)]]
assert Cohort(deferred, digits).deferred
print(json.dumps({"devices": jax.local_device_count(), "configs": w.shape[0], "shards": shards,
                  "costs": [[h["train_cost_running"] for h in r.history] for r in results],
                  "status": [r.status for r in results],
                  "deferred": [[h["train_cost_running"] for h in r.history]
                               for r in train_together(deferred, digits)]}))
"""


def run(devices: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sharded_over_four_devices_equals_one_device():
    one, four = run(1), run(4)
    assert one["devices"] == 1 and one["configs"] == 6 and one["shards"] == [6]
    assert four["devices"] == 4 and four["configs"] == 8 and four["shards"] == [2, 2, 2, 2]  # padded 6 → 8
    assert one["status"] == four["status"] and len(four["costs"]) == 6
    np.testing.assert_allclose(np.array(four["costs"]), np.array(one["costs"]), rtol=1e-5)
    np.testing.assert_allclose(np.array(four["deferred"]), np.array(one["deferred"]), rtol=1e-9)


def test_a_mesh_only_where_there_are_several_devices():
    """Holds on any host: one device (this CPU) gives no mesh, several (a GPU box, forced CPUs) give one."""
    mesh = config_mesh()
    assert (mesh is None) == (len(jax.local_devices()) == 1)
    assert padded(6, None) == 6
    if mesh is not None:
        assert padded(6, mesh) % len(jax.local_devices()) == 0
