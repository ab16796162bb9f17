"""init_params (five schemes, keys, dtypes), feedforward (by hand, one example and a batch), bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.core.network import INIT_SCHEMES

pytestmark = pytest.mark.x64

KEY = jax.random.key(42)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_init_shapes_dtypes_and_keys(scheme, dtype):
    params = jaxbp.init_params(KEY, [7, 5, 1, 3], scheme, dtype)
    assert [layer.w.shape for layer in params] == [(5, 7), (1, 5), (3, 1)]
    assert [layer.b.shape for layer in params] == [(5,), (1,), (3,)]
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))
    again = jaxbp.init_params(KEY, [7, 5, 1, 3], scheme, dtype)
    other = jaxbp.init_params(jax.random.key(43), [7, 5, 1, 3], scheme, dtype)
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)))
    assert not bool(jnp.array_equal(params[0].w, other[0].w))


@pytest.mark.parametrize(
    "scheme,w_std,b_std",
    [("normal", 1.0, 1.0), ("scaled", 1 / 20, 1.0), ("uniform", 1 / 12**0.5, 1 / 12**0.5),
     ("glorot", (2 / 700) ** 0.5, 0.0), ("he", (2 / 400) ** 0.5, 0.0)],
)
def test_init_statistics(scheme, w_std, b_std):
    (layer,) = jaxbp.init_params(KEY, [400, 300], scheme, jnp.float64)
    assert abs(float(layer.w.std()) / w_std - 1) < 0.03
    assert abs(float(layer.w.mean())) < 0.03 * w_std
    assert float(layer.b.std()) == pytest.approx(b_std, rel=0.2, abs=0.0)
    if scheme == "uniform":
        assert float(jnp.abs(layer.w).max()) <= 0.5 and float(jnp.abs(layer.b).max()) <= 0.5
    if scheme == "glorot":
        assert float(jnp.abs(layer.w).max()) <= (6 / 700) ** 0.5


@pytest.mark.parametrize(
    "sizes,error,match",
    [([3], ValueError, r"at least 2 layers.*got \[3\]"), ([3, 0], ValueError, "positive integers"),
     ([3, -2], ValueError, "positive integers"), ([3, 2.5], ValueError, "positive integers"),
     ("784,30", TypeError, "sequence of layer widths"), ([3, True], ValueError, "positive integers")],
)
def test_init_refuses_bad_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        jaxbp.init_params(KEY, sizes)


def test_init_refuses_bad_scheme_key_dtype():
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'; expected one of: normal, scaled, uniform"):
        jaxbp.init_params(KEY, [2, 2], "xavier")
    with pytest.raises(TypeError, match=r"key must be a PRNG key such as jax.random.key\(0\)"):
        jaxbp.init_params(0, [2, 2])
    with pytest.raises(TypeError, match="float dtype"):
        jaxbp.init_params(KEY, [2, 2], dtype=jnp.int32)


def test_legacy_uint32_keys_work():
    assert jaxbp.init_params(jax.random.PRNGKey(0), [2, 2])[0].w.shape == (2, 2)


def test_feedforward_by_hand(small):
    params, X, _ = small
    nets, a = jaxbp.feedforward(params, X[0], "tanh", "softmax")
    w1, b1, w2, b2 = (np.asarray(t) for layer in params for t in layer)
    net1 = w1 @ np.asarray(X[0]) + b1
    net2 = w2 @ np.tanh(net1) + b2
    np.testing.assert_allclose(nets[0], net1, rtol=1e-13)
    np.testing.assert_allclose(a[-1], np.exp(net2) / np.exp(net2).sum(), rtol=1e-13)
    assert a[0] is not None and np.array_equal(a[0], X[0]) and len(a) == 3 and len(nets) == 2


def test_feedforward_batch_equals_rows_and_jit(small):
    params, X, _ = small
    _, batch = jaxbp.feedforward(params, X)
    _, jitted = jax.jit(jaxbp.feedforward, static_argnums=(2, 3))(params, X, "sigmoid", None)
    for i in range(X.shape[0]):
        np.testing.assert_allclose(batch[-1][i], jaxbp.feedforward(params, X[i])[1][-1], rtol=1e-13)
    np.testing.assert_allclose(jitted[-1], batch[-1], rtol=1e-13)


def test_feedforward_refuses_wrong_width(small):
    params, X, _ = small
    with pytest.raises(ValueError, match=r"x must be \(4,\) or a batch \(m, 4\).*got shape \(6, 3\)"):
        jaxbp.feedforward(params, X[:, :3])
    with pytest.raises(ValueError, match=r"got shape \(2, 6, 4\)"):
        jaxbp.feedforward(params, jnp.stack([X, X]))
