"""explain(): the trace's numbers are BP1–BP4's own (equal to backprop's and jax.grad's), its update is one SGD step
of train, the angel's slopes agree with δ, and a 2-2-2 network worked by hand matches to 1e-9."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import problem
from jaxbp import Dataset, Split, TrainConfig
from jaxbp.app.commands import TOLERANCES
from jaxbp.core import activations
from jaxbp.core.explain import DEFAULT_ETA, Quantity, angel, explain
from jaxbp.training.loop import initial_params, make_epoch
from jaxbp.training.optim import make_optimizer

pytestmark = pytest.mark.x64

PAIRINGS = [("quadratic", None), ("quadratic", "softmax"), ("cross_entropy", "sigmoid"), ("log_likelihood", "softmax")]
# sigmoid with a σ' wrong by a factor 1.5 (as in test_gradcheck): the angel must disagree with its δ
WRONG = activations.Activation("sigmoid", jax.nn.sigmoid, lambda z: 1.5 * activations.sigmoid.prime(z), (0.0, 1.0))


def layer_rel(measured, reference) -> float:
    """gradcheck's per-layer relative error: max |a − b| / max(|a|, |b|) over the layer."""
    a, b = np.asarray(measured), np.asarray(reference)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b))))


def grads_of(trace):
    return tuple(jaxbp.Layer(layer.nabla_w.value, layer.nabla_b.value) for layer in trace.layers)


@pytest.mark.parametrize("cost,output", PAIRINGS)
@pytest.mark.parametrize("batch", [False, True])
def test_gradients_are_backprops_and_jax_grads_and_the_angel_measures_delta(cost, output, batch):
    params, X, Y = problem([4, 5, 3, 3], m=6)
    args = ("tanh", cost, output)
    trace = explain(params, X if batch else X[0], Y if batch else Y[0], *args, eta=0.5)
    tolerance = TOLERANCES["float64"][1]  # what `jaxbp gradcheck` allows its numerical checks in float64
    for layer, slope in zip(trace.layers, angel(params, X if batch else X[0], Y if batch else Y[0], *args)):
        # the trace's angel is angel() (compiled in another program: the same up to rounding over 2Δ)
        np.testing.assert_allclose(layer.angel.value, slope, rtol=0, atol=1e-9)
        assert layer.angel.value.shape == layer.net.value.shape
        assert layer_rel(layer.angel.value, layer.angel_delta.value) <= tolerance
        # for a batch, the δ the angel measures is that of the mean cost: δ^{x,l} / m
        np.testing.assert_allclose(layer.angel_delta.value, layer.delta.value / (len(X) if batch else 1),
                                   rtol=1e-12, atol=1e-15)
    bp = jaxbp.backprop_batch(params, X, Y, *args) if batch else jaxbp.backprop(params, X[0], Y[0], *args)
    ad = jaxbp.autodiff_grads(params, X if batch else X[:1], Y if batch else Y[:1], *args)
    assert jaxbp.compare_grads(grads_of(trace), bp).ok(1e-13)
    assert jaxbp.compare_grads(grads_of(trace), ad).ok(1e-12)
    # the per-example δ^{x,l} are deltas()'s, and every layer's δ is its two factors' product (BP1, BP2)
    for layer, delta in zip(trace.layers, jaxbp.deltas(params, X if batch else X[0], Y if batch else Y[0], *args)):
        np.testing.assert_allclose(layer.delta.value, delta, rtol=1e-12, atol=1e-15)
    for layer in trace.layers[:-1]:
        np.testing.assert_allclose(layer.delta.value, layer.upstream.value * layer.sigma_prime.value, rtol=1e-14)
    top, y = trace.layers[-1], trace.y.value
    if trace.info.bp1 == "jacobian":  # δ^L = Jᵀ ∇_a C with σ' the softmax Jacobian
        assert top.sigma_prime.value.shape[-2:] == (3, 3) and "Jacobian" in top.sigma_prime.formula
        np.testing.assert_allclose(top.delta.value, np.einsum("...ij,...i->...j", top.sigma_prime.value,
                                                              top.upstream.value), rtol=1e-12)
    elif trace.info.bp1 == "closed":  # what the code uses: a − y (a Σy − y for softmax), said so in the trace
        assert "closed form" in top.delta.formula
        expected = top.a.value * np.sum(y, -1, keepdims=True) - y if output == "softmax" else top.a.value - y
        np.testing.assert_allclose(top.delta.value, expected, rtol=1e-14)
    else:
        np.testing.assert_allclose(top.delta.value, top.upstream.value * top.sigma_prime.value, rtol=1e-14)


def test_each_entry_names_its_equation_and_the_trace_passes_jit():
    params, X, Y = problem([4, 5, 3, 3], m=3)
    trace = explain(params, X, Y, eta=0.5)
    assert [layer.delta.equation for layer in trace.layers] == ["BP2", "BP2", "BP1"]
    assert [layer.upstream.formula for layer in trace.layers] == ["(w^2)ᵀ δ^2", "(w^3)ᵀ δ^3", "∇_a C"]
    assert {layer.nabla_b.equation for layer in trace.layers} == {"BP3"}
    assert {layer.nabla_w.equation for layer in trace.layers} == {"BP4"}
    assert {layer.w_new.equation for layer in trace.layers} == {"update"}
    assert trace.layers[0].net.formula == "net^1 = w^1 a^0 + b^1" and trace.info.m == 3
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(trace))  # names are static, not leaves
    jitted = jax.jit(explain, static_argnames=("activation", "cost", "output_activation"))(params, X, Y, eta=0.5)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(trace)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert jax.tree.structure(jitted) == jax.tree.structure(trace)
    assert isinstance(trace.layers[0].a, Quantity) and np.asarray(trace.layers[0].a).shape == (3, 5)


def test_cost_before_and_after_are_the_mean_cost_of_the_params_before_and_after():
    params, X, Y = problem([4, 5, 3], m=4)
    trace = explain(params, X, Y, eta=2.0)
    assert float(trace.cost_before.value) == pytest.approx(float(jaxbp.mean_cost(params, X, Y)), rel=1e-14)
    assert float(trace.cost_after.value) == pytest.approx(float(jaxbp.mean_cost(trace.params_after, X, Y)), rel=1e-14)
    assert float(trace.cost_after.value) < float(trace.cost_before.value)


def digits_of(m: int, dtype: str) -> Dataset:
    """The first m training examples of digits as the whole training set (validation and test kept small)."""
    d = jaxbp.load_dataset("digits", dtype=dtype)
    return Dataset("digits", Split(d.train.X[:m], d.train.Y[:m]), Split(*(a[:20] for a in d.validation)),
                   Split(*(a[:20] for a in d.test)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_example_update_is_one_train_step_bit_for_bit(dtype):
    # a training set of ONE example, batch_size=1, epochs=1: train takes exactly one SGD step on that example
    data = digits_of(1, dtype)
    config = TrainConfig(sizes=(64, 7, 10), eta=0.7, batch_size=1, epochs=1, dtype=dtype)
    stepped = jaxbp.train(config, data).params
    trace = explain(initial_params(config), data.train.X[0], data.train.Y[0], eta=config.eta)
    for a, b in zip(jax.tree.leaves(stepped), jax.tree.leaves(trace.params_after)):
        assert a.dtype == b.dtype and bool(jnp.array_equal(a, b))


def test_batch_update_is_one_train_step():
    # m = 10 examples, batch_size=10, epochs=1: one step. train shuffles within the batch, and the mean over it is
    # the same up to float rounding in any order; train also vmaps its program over a config axis (of 1 here), which
    # XLA compiles to GEMMs that round differently. So: equal to train to float64 rounding, and BIT FOR BIT to the
    # epoch program itself (make_epoch, no config axis) on the batch in the order its key draws it.
    m, dtype = 10, "float64"
    data = digits_of(m, dtype)
    config = TrainConfig(sizes=(64, 7, 10), eta=0.7, batch_size=m, epochs=1, dtype=dtype)
    params = initial_params(config)
    trace = explain(params, data.train.X, data.train.Y, eta=config.eta)
    for a, b in zip(jax.tree.leaves(jaxbp.train(config, data).params), jax.tree.leaves(trace.params_after)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    key = jax.random.key(5)
    stepped = jax.jit(make_epoch(config, m))(params, make_optimizer(config, m, 1).init(params), key, *data.train)[0]
    order = jax.random.permutation(key, m)
    in_order = explain(params, data.train.X[order], data.train.Y[order], eta=config.eta)
    for a, b in zip(jax.tree.leaves(stepped), jax.tree.leaves(in_order.params_after)):
        assert bool(jnp.array_equal(a, b))


def test_the_angel_disagrees_with_a_wrong_derivative():
    params, X, Y = problem([6, 5, 3], m=4)
    trace = explain(params, X, Y, WRONG, eta=1.0)
    assert all(layer_rel(layer.angel.value, layer.angel_delta.value) > 0.1 for layer in trace.layers)


def test_bad_input_is_refused_before_any_compute():
    params, X, Y = problem([4, 5, 3], m=2)
    for eta in (math.nan, math.inf, 0.0, -1.0, jnp.array([1.0, 2.0])):
        with pytest.raises(ValueError, match="eta must be a finite number > 0"):
            explain(params, X, Y, eta=eta)
    with pytest.raises(ValueError, match="x must be"):
        explain(params, X[:, :3], Y)
    with pytest.raises(ValueError, match="unknown activation"):
        explain(params, X, Y, "sigmod")
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        explain(params, X, Y, step=math.nan)


def test_default_eta_is_train_configs():
    assert DEFAULT_ETA == TrainConfig().eta


# ---- a 2-2-2 network worked by hand (sigmoid, quadratic cost, one example, η = 2) -----------------------------
# Numbers chosen so that every σ is a simple fraction: σ(0) = 1/2, σ(ln 3) = 3/4, σ(−ln 3) = 1/4, and σ' = σ(1 − σ):
# σ'(0) = 1/4, σ'(±ln 3) = 3/16. Write r = ln 3.
#   x = (1, 2), y = (1, 0)
#   w^1 = [[r, 0], [1, −1/2]], b^1 = (0, 0)
#   net^1 = (r·1 + 0·2 + 0, 1·1 − ½·2 + 0) = (r, 0)           a^1 = (3/4, 1/2)
#   w^2 = [[4, −2], [0, 2]], b^2 = (−2, −1 − r)
#   net^2 = (4·¾ − 2·½ − 2, 0·¾ + 2·½ − 1 − r) = (0, −r)      a^2 = (1/2, 1/4)
#   C = ½[(1 − ½)² + (0 − ¼)²] = ½(1/4 + 1/16) = 5/32
# BP1: ∇_a C = a^2 − y = (−1/2, 1/4); σ'(net^2) = (1/4, 3/16); δ^2 = (−1/8, 3/64)
# BP2: (w^2)ᵀ δ^2 = (4·(−1/8) + 0·(3/64), −2·(−1/8) + 2·(3/64)) = (−1/2, 11/32); σ'(net^1) = (3/16, 1/4)
#      δ^1 = (−3/32, 11/128)
# BP3: ∂C/∂b^2 = (−1/8, 3/64), ∂C/∂b^1 = (−3/32, 11/128)
# BP4: ∂C/∂w^2 = δ^2 (a^1)ᵀ = [[−3/32, −1/16], [9/256, 3/128]]; ∂C/∂w^1 = δ^1 xᵀ = [[−3/32, −3/16], [11/128, 11/64]]
# update with η = 2: w^2 ← [[4 + 3/16, −2 + 1/8], [−9/128, 2 − 3/64]], b^2 ← (−2 + 1/4, −1 − r − 3/32)
#                    w^1 ← [[r + 3/16, 3/8], [1 − 11/64, −1/2 − 11/32]], b^1 ← (3/16, −11/64)
# C after: net^1 = (r + 3/16 + 3/4 + 3/16, 1 − 11/64 − 1 − 11/16 − 11/64) = (r + 9/8, −33/32); a^1 = σ(net^1);
#          net^2 = w^2_new a^1 + b^2_new, C = ½[(1 − σ(net^2_1))² + σ(net^2_2)²] (evaluated below in NumPy from these
#          hand-derived parameters, by the formula, not by jaxbp)
r = math.log(3)
HAND = {
    "params": [([[r, 0], [1, -0.5]], [0, 0]), ([[4, -2], [0, 2]], [-2, -1 - r])],
    "x": [1, 2], "y": [1, 0], "eta": 2.0,
    "net": [[r, 0], [0, -r]], "a": [[3 / 4, 1 / 2], [1 / 2, 1 / 4]], "C": 5 / 32,
    "upstream": [[-1 / 2, 11 / 32], [-1 / 2, 1 / 4]], "sigma_prime": [[3 / 16, 1 / 4], [1 / 4, 3 / 16]],
    "delta": [[-3 / 32, 11 / 128], [-1 / 8, 3 / 64]],
    "nabla_w": [[[-3 / 32, -3 / 16], [11 / 128, 11 / 64]], [[-3 / 32, -1 / 16], [9 / 256, 3 / 128]]],
    "w_new": [[[r + 3 / 16, 3 / 8], [1 - 11 / 64, -1 / 2 - 11 / 32]],
              [[4 + 3 / 16, -2 + 1 / 8], [-9 / 128, 2 - 3 / 64]]],
    "b_new": [[3 / 16, -11 / 64], [-2 + 1 / 4, -1 - r - 3 / 32]],
}


def test_a_2_2_2_network_worked_by_hand():
    params = tuple(jaxbp.Layer(jnp.array(w, jnp.float64), jnp.array(b, jnp.float64)) for w, b in HAND["params"])
    trace = explain(params, jnp.array(HAND["x"], jnp.float64), jnp.array(HAND["y"], jnp.float64), eta=HAND["eta"])
    close = dict(rtol=0, atol=1e-9)
    for l, layer in enumerate(trace.layers):
        for name in ("net", "a", "upstream", "sigma_prime", "delta", "w_new", "b_new", "nabla_w"):
            np.testing.assert_allclose(getattr(layer, name).value, HAND[name][l], **close, err_msg=f"{name}^{l + 1}")
        np.testing.assert_allclose(layer.nabla_b.value, HAND["delta"][l], **close)  # BP3: ∂C/∂b = δ
        np.testing.assert_allclose(layer.angel.value, HAND["delta"][l], **close)  # the angel measures δ
    assert float(trace.cost_before.value) == pytest.approx(HAND["C"], abs=1e-9)
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a1 = sigma(np.array(HAND["w_new"][0]) @ np.array(HAND["x"]) + np.array(HAND["b_new"][0]))
    np.testing.assert_allclose(a1, sigma(np.array([r + 9 / 8, -33 / 32])), rtol=1e-15)  # net^1 after, by hand
    a2 = sigma(np.array(HAND["w_new"][1]) @ a1 + np.array(HAND["b_new"][1]))
    after = 0.5 * ((1 - a2[0]) ** 2 + a2[1] ** 2)
    assert float(trace.cost_after.value) == pytest.approx(after, abs=1e-9) and after < HAND["C"]
