"""Layer/Params checks and the float dtype rule."""

import jax
import jax.numpy as jnp
import pytest

from jaxbp.core.types import Layer, float_dtype, layer_sizes

pytestmark = pytest.mark.x64


def test_layer_sizes():
    params = (Layer(jnp.zeros((3, 2)), jnp.zeros(3)), Layer(jnp.zeros((1, 3)), jnp.zeros(1)))
    assert layer_sizes(params) == (2, 3, 1)


def test_layer_sizes_refuses_bad_shapes_and_mixed_dtypes():
    with pytest.raises(ValueError, match=r"layer 1: b must have shape \(3,\)"):
        layer_sizes((Layer(jnp.zeros((3, 2)), jnp.zeros(2)),))
    with pytest.raises(ValueError, match=r"layer 1: w must have shape"):
        layer_sizes((Layer(jnp.zeros(3), jnp.zeros(3)),))
    with pytest.raises(TypeError, match="share one float dtype"):
        layer_sizes((Layer(jnp.zeros((3, 2), jnp.float32), jnp.zeros(3, jnp.float64)),))
    with pytest.raises(TypeError, match="non-empty tuple of Layer"):
        layer_sizes(())


def test_float_dtype():
    assert float_dtype("float32") == jnp.float32
    assert float_dtype(jnp.float64) == jnp.float64
    with pytest.raises(TypeError, match="float dtype.*got int32"):
        float_dtype(jnp.int32)
    with pytest.raises(TypeError, match="float dtype.*got 'banana'"):
        float_dtype("banana")
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="float64 needs 64-bit JAX: call jax.config.update"):
            float_dtype("float64")
