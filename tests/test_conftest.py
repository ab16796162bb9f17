"""The test set-up itself: a test that switches JAX to 64-bit for good (as a float64 command does, in-process)
leaves the next test in its worker in the default float32 (run in file order, as pytest -p no:xdist does)."""

import jax
import jax.numpy as jnp
import pytest

from jaxbp.app.cli import main


@pytest.mark.x64
def test_a_float64_command_in_process(capsys):
    assert main(["gradcheck", "--sizes", "3,2,2", "--batch-size", "2", "--dtype", "float64"]) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_the_next_test_runs_in_float32_again():
    assert not jax.config.jax_enable_x64
    assert jnp.asarray(1.0).dtype == jnp.float32
