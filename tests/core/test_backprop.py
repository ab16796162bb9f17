"""BP1–BP4 against jax.grad, the three forms against each other, jit, tree structure, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import PAIRINGS, WIDTHS, problem, sizes_for
from jaxbp.core import activations, costs
from jaxbp.core.autodiff import autodiff_grads_and_output
from jaxbp.core.backprop import backprop_batch_and_output, backpropagate_error, nabla_b, nabla_w, output_error

pytestmark = pytest.mark.x64

HIDDEN = list(activations.HIDDEN_ACTIVATIONS)
RTOL = {jnp.float64: 1e-12, jnp.float32: 1e-5}


def _mean(per_example):
    return jax.tree.map(lambda g: jnp.mean(g, axis=0), per_example)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("depth", sorted(WIDTHS))
@pytest.mark.parametrize("cost,output", PAIRINGS, ids=[f"{c}-{o or 'same'}" for c, o in PAIRINGS])
@pytest.mark.parametrize("activation", HIDDEN)
def test_bp_equals_jax_grad(activation, cost, output, depth, dtype):
    """float64 on N(0,1) weights; float32 on N(0,1/n_in) weights, where float32 itself is well conditioned
    (see test_float32_accuracy_when_ill_conditioned for the saturated case)."""
    scheme = "normal" if dtype == jnp.float64 else "scaled"
    params, X, Y = problem(sizes_for(depth, output), dtype=dtype, seed=depth, scheme=scheme)
    args = (activation, cost, output)
    ad = jaxbp.autodiff_grads(params, X, Y, *args)
    bp = jaxbp.backprop_batch(params, X, Y, *args)
    per_example = jaxbp.per_example_grads(params, X, Y, *args)
    singles = [jaxbp.backprop(params, X[i], Y[i], *args) for i in range(X.shape[0])]
    assert jaxbp.compare_grads(bp, ad).ok(RTOL[dtype]), jaxbp.compare_grads(bp, ad)
    assert jaxbp.compare_grads(_mean(per_example), ad).ok(RTOL[dtype])
    for i, single in enumerate(singles):
        assert jaxbp.compare_grads(single, jax.tree.map(lambda g, i=i: g[i], per_example)).ok(RTOL[dtype])
    for grads in (bp, ad, singles[0]):
        assert jax.tree.structure(grads) == jax.tree.structure(params)
        leaves = zip(jax.tree.leaves(grads), jax.tree.leaves(params))
        assert all(g.dtype == p.dtype and g.shape == p.shape for g, p in leaves)
    assert all(g.shape == (X.shape[0], *p.shape) for g, p in zip(jax.tree.leaves(per_example), jax.tree.leaves(params)))


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy", "log_likelihood"])
def test_float32_accuracy_when_ill_conditioned(cost):
    """Softplus ×4 on N(0,1) weights saturates the softmax output (a ≈ 0.99997): float32 loses digits in
    both BP and jax.grad. Against the float64 truth of the same float32 parameters, BP stays within 1e-4
    and within 4× of jax.grad's own error (it is far better for the quadratic cost)."""
    params, X, Y = problem(sizes_for(4, "softmax"), dtype=jnp.float32, seed=4)
    args = ("softplus", cost, "softmax")
    f64 = functools.partial(jax.tree.map, lambda t: t.astype(jnp.float64))
    truth = jaxbp.autodiff_grads(f64(params), f64(X), f64(Y), *args)
    bp = jaxbp.compare_grads(f64(jaxbp.backprop_batch(params, X, Y, *args)), truth)
    ad = jaxbp.compare_grads(f64(jaxbp.autodiff_grads(params, X, Y, *args)), truth)
    assert bp.worst <= 1e-4 and bp.worst <= 4 * ad.worst, (bp, ad)


@pytest.mark.parametrize("cost,output", PAIRINGS, ids=[f"{c}-{o or 'same'}" for c, o in PAIRINGS])
@pytest.mark.parametrize("fn", [jaxbp.backprop_batch, jaxbp.per_example_grads, jaxbp.autodiff_grads,
                                jaxbp.backprop])
def test_under_jit_equals_plain(fn, cost, output):
    params, X, Y = problem([4, 5, 3], dtype=jnp.float32)
    if fn is jaxbp.backprop:
        X, Y = X[0], Y[0]
    f = functools.partial(fn, activation="tanh", cost=cost, output_activation=output)
    plain, jitted = f(params, X, Y), jax.jit(f)(params, X, Y)
    assert jax.tree.structure(jitted) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(jitted)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_backprop_uses_no_autodiff(monkeypatch, small):
    params, X, Y = small

    def forbidden(*args, **kwargs):
        raise AssertionError("autodiff called inside BP")

    for name in ("grad", "vjp", "jvp", "value_and_grad", "linearize", "jacfwd", "jacrev", "hessian"):
        monkeypatch.setattr(jax, name, forbidden)
    jaxbp.backprop(params, X[0], Y[0], "tanh", "log_likelihood", "softmax")
    jaxbp.backprop_batch(params, X, Y, "sigmoid", "cross_entropy", "sigmoid")
    with pytest.raises(AssertionError, match="autodiff called"):
        jaxbp.autodiff_grads(params, X, Y)  # proves the patch bites


def test_equations_by_hand(small):
    """BP1–BP4 one by one against the formulas written out with NumPy for one example."""
    params, X, Y = small
    x, y = np.asarray(X[0]), np.asarray(Y[0])
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    w1, b1, w2, b2 = (np.asarray(t) for layer in params for t in layer)
    net1 = w1 @ x + b1
    a1 = sig(net1)
    net2 = w2 @ a1 + b2
    a2 = sig(net2)
    delta2 = (a2 - y) * sig(net2) * (1 - sig(net2))  # BP1, quadratic cost
    delta1 = (w2.T @ delta2) * sig(net1) * (1 - sig(net1))  # BP2
    s = activations.sigmoid
    np.testing.assert_allclose(output_error(net2, a2, y, costs.quadratic, s), delta2, rtol=1e-13)
    np.testing.assert_allclose(backpropagate_error(delta2, w2, net1, s), delta1, rtol=1e-13)
    np.testing.assert_allclose(nabla_b(jnp.asarray(delta1)), delta1, rtol=1e-13)  # BP3
    np.testing.assert_allclose(nabla_w(jnp.asarray(delta1), jnp.asarray(x)), np.outer(delta1, x), rtol=1e-13)  # BP4
    grads = jaxbp.backprop(params, x, y)
    np.testing.assert_allclose(grads[0].w, np.outer(delta1, x), rtol=1e-13)
    np.testing.assert_allclose(grads[1].b, delta2, rtol=1e-13)


def test_bp3_bp4_sum_over_a_batch(small):
    _, X, _ = small
    delta = X[:, :3]
    np.testing.assert_allclose(nabla_b(delta), delta.sum(0))
    np.testing.assert_allclose(nabla_w(delta, X), sum(np.outer(d, x) for d, x in zip(delta, X)))


def test_closed_form_bp1_equals_general_form():
    """Where σ' cancels analytically, the closed form equals ∇_a C ⊙ σ' (or Jᵀ ∇_a C for softmax)."""
    net = jax.random.normal(jax.random.key(3), (5, 4), jnp.float64)
    y = jax.random.uniform(jax.random.key(4), (5, 4), jnp.float64)
    for cost, out in [(costs.cross_entropy, activations.sigmoid), (costs.log_likelihood, activations.softmax)]:
        a = out.fn(net)
        J = out.prime(net) if out.elementwise else None
        general = cost.nabla_a(a, y) * J if out.elementwise else jnp.einsum(
            "...ij,...i->...j", out.prime(net), cost.nabla_a(a, y))
        np.testing.assert_allclose(output_error(net, a, y, cost, out), general, rtol=1e-12)


def test_closed_form_stays_finite_when_saturated():
    params = (jaxbp.Layer(jnp.array([[40.0], [-40.0]], jnp.float32), jnp.zeros(2, jnp.float32)),)
    grads = jaxbp.backprop(params, jnp.ones(1, jnp.float32), jnp.array([0.0, 1.0], jnp.float32),
                           "sigmoid", "cross_entropy")
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(grads[0].b, [1.0, -1.0])  # δ = a − y with a saturated at 1 and 0


def test_deltas_are_dC_dnet(small):
    params, X, Y = small
    ds = jaxbp.deltas(params, X[0], Y[0])
    assert [d.shape for d in ds] == [(5,), (3,)]
    np.testing.assert_allclose(ds[-1], jaxbp.backprop(params, X[0], Y[0])[-1].b)


@pytest.mark.parametrize("fn", [jaxbp.backprop_batch, jaxbp.per_example_grads, jaxbp.autodiff_grads])
def test_batch_forms_refuse_one_example(fn, small):
    params, X, Y = small
    with pytest.raises(ValueError, match=r"x must be a batch \(m, 4\)"):
        fn(params, X[0], Y[0])


def test_backprop_refuses_a_batch(small):
    params, X, Y = small
    with pytest.raises(ValueError, match=r"x must be one example \(4,\).*got shape \(6, 4\)"):
        jaxbp.backprop(params, X, Y)


@pytest.mark.parametrize(
    "x_shape,y_shape,match",
    [((6, 5), (6, 3), r"x must be .*sizes\[0\]=4, got shape \(6, 5\)"),
     ((6, 4), (6, 2), r"y must have shape \(6, 3\).*got shape \(6, 2\)"),
     ((6, 4), (5, 3), r"y must have shape \(6, 3\).*got shape \(5, 3\)")],
)
def test_shape_mismatch(x_shape, y_shape, match, small):
    params = small[0]
    with pytest.raises(ValueError, match=match):
        jaxbp.backprop_batch(params, jnp.zeros(x_shape), jnp.zeros(y_shape))


def test_unknown_names(small):
    params, X, Y = small
    with pytest.raises(ValueError, match="unknown activation 'sigmod'; expected one of: sigmoid, tanh"):
        jaxbp.backprop_batch(params, X, Y, activation="sigmod")
    with pytest.raises(ValueError,
                       match="unknown cost 'mse'; expected one of: quadratic, cross_entropy, log_likelihood"):
        jaxbp.backprop_batch(params, X, Y, cost="mse")


@pytest.mark.parametrize("output", ["tanh", "relu", "identity", "softplus", "leaky_relu"])
@pytest.mark.parametrize("cost", ["cross_entropy", "log_likelihood"])
def test_costs_needing_unit_interval_refuse_other_outputs(cost, output, small):
    params, X, Y = small
    with pytest.raises(ValueError, match=f"cost {cost} needs outputs in \\(0, 1\\).*{output}.*sigmoid, softmax"):
        jaxbp.backprop_batch(params, X, Y, cost=cost, output_activation=output)


def test_params_that_do_not_fit_together(small):
    params, X, Y = small
    broken = (params[0], jaxbp.Layer(params[1].w[:, :2], params[1].b))
    with pytest.raises(ValueError, match=r"layer 2: w must have shape \(n_2, 5\)"):
        jaxbp.backprop_batch(broken, X, Y)
    with pytest.raises(TypeError, match="params must be a non-empty tuple of Layer"):
        jaxbp.backprop_batch(list(params), X, Y)


@pytest.mark.parametrize("cost,output", PAIRINGS, ids=[f"{c}-{o or 'same'}" for c, o in PAIRINGS])
@pytest.mark.parametrize("fn,grads", [(backprop_batch_and_output, jaxbp.backprop_batch),
                                      (autodiff_grads_and_output, jaxbp.autodiff_grads)], ids=["bp", "autodiff"])
def test_and_output_gives_the_gradient_and_a_L(fn, grads, cost, output):
    params, X, Y = problem([4, 5, 3])
    nabla, a_L = jax.jit(fn, static_argnums=(3, 4, 5))(params, X, Y, "tanh", cost, output)
    for got, want in zip(jax.tree.leaves(nabla), jax.tree.leaves(grads(params, X, Y, "tanh", cost, output))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a_L, jaxbp.feedforward(params, X, "tanh", output)[1][-1], rtol=1e-12)
    assert jax.tree.structure(nabla) == jax.tree.structure(params)
