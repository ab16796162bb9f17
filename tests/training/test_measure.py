"""A cohort's measure is each config's metrics as measured alone, in one program compiled once per config count."""

import jax
import numpy as np
import pytest

import jaxbp
from jaxbp import TrainConfig
from jaxbp.training.cohort import Cohort
from jaxbp.training.diagnostics import flatten, layer_diagnostics
from jaxbp.training.loop import Running, evaluate_splits
from jaxbp.training.measure import DIAGNOSTIC_EXAMPLES

pytestmark = pytest.mark.x64


def configs(measure="running"):
    return [TrainConfig(sizes=(64, 12, 10), epochs=1, eta=eta, l2=l2, seed=seed, measure=measure,
                        dtype="float64")
            for eta, l2, seed in [(0.5, 0.0, 0), (3.0, 1.0, 1), (1.0, 0.1, 2)]]


def one(cohort, k):
    return jax.tree.map(lambda leaf: leaf[k], cohort.params)


@pytest.mark.parametrize("measure", ["running", "full"])
def test_each_configs_row_is_what_it_measures_alone(measure):
    data = jaxbp.load_dataset("digits")
    cohort = Cohort(configs(measure), data)
    running = Running(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.7]))
    rows, finite = cohort.measure(cohort.params, cohort.opt_state, running)
    assert finite.tolist() == [True] * 3
    X, Y = (jax.numpy.asarray(a[:DIAGNOSTIC_EXAMPLES], np.float64) for a in data.train)
    for k, (config, row) in enumerate(zip(cohort.configs, rows)):
        alone = evaluate_splits(config, one(cohort, k), data)
        names = ["validation", "test"] + (["train"] if measure == "full" else [])
        assert {key for key in row if key.endswith(("_cost", "_accuracy"))} == \
            {f"{name}_{what}" for name in names for what in ("cost", "accuracy")}
        for name in names:
            assert row[f"{name}_cost"] == pytest.approx(alone[name]["cost"], rel=1e-10)
            assert row[f"{name}_accuracy"] == pytest.approx(alone[name]["accuracy"], rel=1e-12)
        assert (row["train_cost_running"], row["train_accuracy_running"]) == (running.cost[k], running.accuracy[k])
        diagnostics = flatten(layer_diagnostics(one(cohort, k), X, Y, config))
        assert {key: row[key] for key in diagnostics} == pytest.approx(diagnostics, rel=1e-10)


def test_an_empty_split_is_measured_as_none_and_a_non_finite_config_is_flagged():
    data = jaxbp.load_dataset("digits", validation=0)
    cohort = Cohort(configs(), data)
    params = jax.tree.map(lambda leaf: leaf.at[1].set(np.inf) if leaf.ndim == 3 else leaf, cohort.params)
    rows, finite = cohort.measure(params, cohort.opt_state, Running(np.zeros(3), np.zeros(3)))
    assert finite.tolist() == [True, False, True]
    assert all(row["validation_cost"] is None and row["validation_accuracy"] is None for row in rows)
    assert all(row["test_accuracy"] is not None for row in rows)


def backend_compiles(call) -> int:
    """How many programs XLA compiled (or loaded from JAX's persistent cache) while ``call()`` ran."""
    seen = []
    listener = lambda event, *_, **__: seen.append(event) if event.endswith("backend_compile_duration") else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        call()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(seen)


def test_compiling_a_cohort_compiles_its_measure_so_that_the_epochs_measure_compiles_nothing():
    data, running = jaxbp.load_dataset("digits"), Running(np.zeros(3), np.zeros(3))
    cold = Cohort(configs(), data)
    assert backend_compiles(lambda: cold.measure(cold.params, cold.opt_state, running)) >= 1  # the count works
    cohort = Cohort(configs(), data)
    cohort.compile()
    assert backend_compiles(lambda: cohort.measure(cohort.params, cohort.opt_state, running)) == 0
