"""Sweep specs: parsing, grid and random expansion, and every kind of bad spec refused in one line."""

import pytest

from jaxbp.sweeps.spec import expand, load_spec, parse_spec, points

GOOD = """
name = "t"
dataset = "digits"
[base]
sizes = [64, 30, 10]
epochs = 3
[sweep]
eta = [0.1, 3.0]
hidden = [[10], [20, 5]]
seed = [0, 1]
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_expansion(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    items = expand(spec, (64, 10))
    assert len(items) == 8 and spec.source == GOOD
    assert items[0][0] == {"eta": 0.1, "hidden": [10], "seed": 0}
    assert [c.sizes for _, c in items[:4]] == [(64, 10, 10), (64, 10, 10), (64, 20, 5, 10), (64, 20, 5, 10)]
    assert {(c.eta, c.seed) for _, c in items} == {(e, s) for e in (0.1, 3.0) for s in (0, 1)}
    assert all(c.epochs == 3 for _, c in items)


def test_sizes_default_to_the_dataset():
    spec = parse_spec({"name": "t", "sweep": {"eta": [1.0]}})
    ((_, config),) = expand(spec, (784, 10))
    assert config.sizes == (784, 30, 10)


def test_random_mode_is_seeded_and_in_range():
    table = {"name": "t", "mode": "random", "samples": 50, "sample_seed": 3,
             "sweep": {"eta": {"log_uniform": [0.01, 10.0]}, "l2": {"uniform": [0.0, 5.0]},
                       "batch_size": {"int_uniform": [5, 20]}, "activation": {"choice": ["tanh", "sigmoid"]},
                       "hidden": [[10], [30]]}}
    a, b = points(parse_spec(table)), points(parse_spec(table))
    assert a == b and len(a) == 50
    assert all(0.01 <= p["eta"] <= 10 and 0 <= p["l2"] <= 5 and 5 <= p["batch_size"] <= 20 for p in a)
    assert {p["activation"] for p in a} == {"tanh", "sigmoid"} and {tuple(p["hidden"]) for p in a} == {(10,), (30,)}
    assert sum(p["eta"] < 0.316 for p in a) > 10  # log-uniform: about half below the geometric middle
    assert points(parse_spec({**table, "sample_seed": 4})) != a


def test_digest_follows_content_not_formatting():
    a = parse_spec({"name": "t", "sweep": {"eta": [1.0, 2.0]}}, source="x")
    b = parse_spec({"name": "t", "sweep": {"eta": [1.0, 2.0]}}, source="y  # other comments")
    c = parse_spec({"name": "t", "sweep": {"eta": [1.0, 3.0]}})
    assert a.digest == b.digest != c.digest


@pytest.mark.parametrize(
    "table,error,match",
    [({"name": "t", "sweeep": {}}, ValueError, "unknown key in spec: 'sweeep'; did you mean 'sweep'"),
     ({"name": "t", "sweep": {"etaa": [1.0]}}, ValueError, "unknown axis .* 'etaa'; did you mean 'eta'"),
     ({"name": "t", "base": {"batchsize": 5}}, ValueError, "'batchsize'; did you mean 'batch_size'"),
     ({"sweep": {}}, ValueError, "missing name"),
     ({"name": 5}, TypeError, "name must be a string, got int 5"),
     ({"name": "t", "metric": "accuracy"}, ValueError, "unknown metric .*'accuracy'; did you mean"),
     ({"name": "t", "metric": "train_cost"}, ValueError,
      r"metric = 'train_cost' is the whole training split's, measured only with \[base\] measure = \"full\"; set "
      "that, or rank by train_cost_running"),
     ({"name": "t", "metric": "train_accuracy", "base": {"measure": "full"}, "sweep": {"measure": ["running", "full"]}},
      ValueError, "rank by train_accuracy_running"),
     ({"name": "t", "base": {"measure": "exact"}}, ValueError, "measure must be one of: running, full"),
     ({"name": "t", "sweep": {"eta": []}}, ValueError, r"\[sweep\] eta is empty"),
     ({"name": "t", "sweep": {"eta": 0.5}}, TypeError, r"\[sweep\] eta must be a list of values, got float"),
     ({"name": "t", "sweep": {"eta": ["fast"]}}, TypeError, "config {'eta': 'fast'}: eta must be a number"),
     ({"name": "t", "sweep": {"eta": [-1.0]}}, ValueError, "config {'eta': -1.0}: eta must be > 0"),
     ({"name": "t", "sweep": {"hidden": [30]}}, TypeError, "list of lists of widths"),
     ({"name": "t", "sweep": {"eta": {"log_uniform": [0.1, 1]}}}, ValueError, "need samples = N draws"),
     ({"name": "t", "mode": "random", "sweep": {}}, ValueError, "needs samples = N"),
     ({"name": "t", "mode": "random", "samples": 2, "sweep": {"eta": {"log_uniform": [0, 1]}}}, ValueError,
      "log_uniform needs low > 0"),
     ({"name": "t", "mode": "random", "samples": 2, "sweep": {"eta": {"gauss": [0, 1]}}}, ValueError,
      "must be one of"),
     ({"name": "t", "samples": 3}, ValueError, "samples does not apply to mode = 'grid'"),
     ({"name": "t", "mode": "bayes"}, ValueError, "mode must be one of: grid, random, halving, hyperband, pbt, optuna"),
     ({"name": "t", "sweep": {"eta": [float("inf")]}}, ValueError, "eta must be a finite number, got inf"),
     ({"name": "t", "base": {"l2": float("nan")}}, ValueError, "l2 must be a finite number, got nan"),
     ({"name": "t", "validation": float("nan")}, ValueError, "validation must be a finite count or fraction"),
     ({"name": "t", "mode": "random", "samples": 2, "sweep": {"eta": {"uniform": [0.1, float("inf")]}}},
      ValueError, "finite numbers with low < high"),
     ({"name": "t", "mode": "random", "samples": 2, "sweep": {"eta": {"log_uniform": [float("nan"), 1.0]}}},
      ValueError, "finite numbers with low < high"),
     ({"name": "t", "mode": "halving", "search": {"reduction_factr": 3}}, ValueError,
      r"unknown key 'reduction_factr' in \[search\] of mode = 'halving'; did you mean 'reduction_factor'"),
     ({"name": "t", "search": {"min_epochs": 2}}, ValueError, r"mode = 'grid' takes no \[search\] settings"),
     ({"name": "t", "mode": "halving", "search": {"reduction_factor": 1}}, ValueError,
      "reduction_factor must be an integer ≥ 2, got 1"),
     ({"name": "t", "mode": "halving", "search": {"min_epochs": True}}, ValueError, "min_epochs must be an integer"),
     ({"name": "t", "mode": "halving", "base": {"epochs": 3}, "search": {"min_epochs": 9}}, ValueError,
      r"min_epochs = 9 is more than \[base\] epochs = 3"),
     ({"name": "t", "mode": "halving", "sweep": {"epochs": [3, 9]}}, ValueError, "cannot sweep epochs"),
     ({"name": "t", "mode": "hyperband", "search": {"brackets": 0}}, ValueError, "brackets must be an integer ≥ 1"),
     ({"name": "t", "mode": "pbt", "search": {"quantile": 0.75}}, ValueError, "quantile must be a number in"),
     ({"name": "t", "mode": "pbt", "search": {"quantile": float("nan")}}, ValueError, "quantile must be a number"),
     ({"name": "t", "mode": "pbt", "search": {"perturb": [0.8, float("inf")]}}, ValueError,
      "perturb must be a non-empty list of finite numbers > 0"),
     ({"name": "t", "mode": "pbt", "search": {"perturb": []}}, ValueError, "perturb must be a non-empty list"),
     ({"name": "t", "mode": "pbt", "search": {"interval": 0}}, ValueError, "interval must be an integer ≥ 1"),
     ({"name": "t", "mode": "optuna", "search": {"sampler": "bayes"}}, ValueError,
      "sampler must be one of: 'tpe', 'cmaes', 'random', got 'bayes'"),
     ({"name": "t", "mode": "optuna", "search": {"pruner": "hyperband"}}, ValueError, "pruner must be one of"),
     ({"name": "t", "mode": "optuna", "search": {"trials": 0}}, ValueError, "trials must be an integer ≥ 1"),
     ({"name": "t", "mode": "optuna", "samples": 4}, ValueError, "samples does not apply to mode = 'optuna'"),
     ({"name": "t", "mode": "optuna", "sweep": {"eta": [1.0, -2.0]}}, ValueError, "eta must be > 0"),
     ({"name": "t", "mode": "halving", "search": []}, TypeError, r"\[search\] must be a table")],
)
def test_bad_specs(table, error, match):
    with pytest.raises(error, match=match):
        parse_spec(table)


def test_toml_inf_and_nan_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """TOML has inf and nan literals: a spec using them is refused before anything is created."""
    from jaxbp.app.cli import main

    monkeypatch.chdir(tmp_path)
    for text in ('name = "t"\n[sweep]\neta = [inf]\n', 'name = "t"\n[base]\neta = nan\n'):
        assert main(["sweep", str(write(tmp_path, text))]) == 2
        err = capsys.readouterr().err
        assert "eta must be a finite number" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / ".jaxbp").exists()


def test_sizes_must_fit_the_dataset():
    spec = parse_spec({"name": "t", "base": {"sizes": [784, 30, 10]}, "sweep": {"eta": [1.0]}})
    with pytest.raises(ValueError, match=r"sizes \[784, 30, 10\] do not fit dataset 'digits': it has 64 inputs"):
        expand(spec, (64, 10))


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read spec .*missing.toml"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_spec(write(tmp_path, "name = \n"))
    with pytest.raises(ValueError, match="cannot read spec"):
        load_spec(tmp_path)


@pytest.mark.parametrize("name", ["quickstart", "nielsen_ch1", "fashion_best", "fashion_halving", "playground"])
def test_shipped_experiments_parse(name):
    from pathlib import Path

    spec = load_spec(Path(__file__).parents[2] / "experiments" / f"{name}.toml")
    assert spec.name == name and len(points(spec)) >= 1


def test_explain_example_is_a_test_index_and_part_of_the_digest():
    import hashlib
    import json

    table = {"name": "t", "dataset": "xor", "sweep": {"eta": [1.0, 2.0]}}
    plain, three = parse_spec(table), parse_spec({**table, "explain_example": 3})
    assert plain.explain_example is None and three.explain_example == 3
    assert len({plain.digest, three.digest, parse_spec({**table, "explain_example": 4}).digest}) == 3
    # without it, a spec's hash is the one it had before the key existed (an unfinished sweep still resumes)
    keys = ("name", "dataset", "metric", "mode", "samples", "sample_seed", "validation", "base", "sweep", "search")
    canonical = json.dumps({k: getattr(plain, k) for k in keys}, sort_keys=True, default=str)
    assert plain.digest == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=r"^spec: explain_example must be an integer ≥ 0 \(an example of the "
                                             r"test split\), got"):
            parse_spec({**table, "explain_example": bad})


def test_search_settings_get_their_defaults_and_change_the_digest():
    halving = parse_spec({"name": "t", "mode": "halving", "sweep": {"eta": [1.0, 2.0]}})
    assert halving.search == {"min_epochs": 1, "reduction_factor": 3}
    other = parse_spec({"name": "t", "mode": "halving", "search": {"reduction_factor": 2},
                        "sweep": {"eta": [1.0, 2.0]}})
    assert other.search["reduction_factor"] == 2 and other.digest != halving.digest
    pbt = parse_spec({"name": "t", "mode": "pbt", "sweep": {"eta": [1.0]}})
    assert pbt.search == {"interval": 2, "quantile": 0.25, "perturb": [0.8, 1.2], "seed": 0}


def test_a_search_takes_a_grid_or_samples_draws_and_optuna_its_own_proposals():
    grid = parse_spec({"name": "t", "mode": "halving", "sweep": {"eta": [1.0, 2.0], "seed": [0, 1]}})
    assert len(points(grid)) == 4
    drawn = parse_spec({"name": "t", "mode": "hyperband", "samples": 7, "sweep": {"eta": {"log_uniform": [0.1, 10]}}})
    assert len(points(drawn)) == 7 and all(0.1 <= p["eta"] <= 10 for p in points(drawn))
    optuna = parse_spec({"name": "t", "mode": "optuna", "sweep": {"eta": {"log_uniform": [0.1, 10]},
                                                                "hidden": [[10], [30]]}})
    assert points(optuna) == [] and optuna.search["trials"] == 32


def test_a_full_split_metric_with_measure_full():
    spec = parse_spec({"name": "t", "metric": "train_cost", "base": {"measure": "full"}})
    assert spec.metric == "train_cost" and not spec.maximize
    assert all(config.measure == "full" for _, config in expand(spec, (64, 10)))
