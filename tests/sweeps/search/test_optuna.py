"""mode = "optuna" on a real SQLite store: Optuna's study sees every config's value, lives in its own database,
prunes inside the shared program, and a killed sweep resumes to exactly ``trials`` configs."""

import math
import os
import sqlite3
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers import count_children, kill_9_and_resume, store
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.search.optuna import OptunaSearch, default_storage
from jaxbp.sweeps.search.population import Population
from jaxbp.sweeps.spec import load_spec, parse_spec
from jaxbp.sweeps.tracking import STOPPED_AT, metric_history

URI = "sqlite:////tmp/jaxbp-optuna-test/mlflow.db"  # the study would live beside it (nothing is written)

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
# η = 1e-4 barely learns in 3 epochs, η = 2 or 3 do. With this seed TPE's first (random) batch of 5 draws η = 2
# or 3 only, and the second batch two configs of η = 1e-4: once the first batch has completed (the median pruner
# starts at 5 completed trials), these are far below its median at epoch 1 and are pruned there.
SPEC = {"name": "opt", "dataset": "digits", "mode": "optuna",
        "base": {"sizes": [64, 10, 10], "epochs": 3},
        "sweep": {"eta": {"choice": [1e-4, 2.0, 3.0]}, "hidden": [[10], [20]], "seed": {"int_uniform": [0, 2]}},
        "search": {"trials": 8, "batch": 5, "pruner": "median", "seed": 3}}


def load_study(folder, spec) -> optuna.Study:
    return optuna.load_study(study_name=f"{spec.name}-{spec.digest}", storage=f"sqlite:///{folder / 'optuna.db'}")


def children(client, result) -> dict[int, object]:
    """{config index: child run}, asserting each index is logged once."""
    runs = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    by_index = {int(r.data.tags["jaxbp.config_index"]): r for r in runs}
    assert len(by_index) == len(runs), "a config was logged twice"
    return by_index


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished sweep of SPEC: 8 trials, a batch of 5 then one of 3 (two of them pruned)."""
    tmp = tmp_path_factory.mktemp("optuna")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXBP_SPOOL", str(tmp / "spool"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = run_sweep(parse_spec(SPEC), store(tmp))
    return tmp, result, MlflowClient(store(tmp))


def test_the_study_sees_every_trials_value(finished):
    tmp, result, client = finished
    spec = parse_spec(SPEC)
    study, runs = load_study(tmp, spec), children(client, result)
    assert len(runs) == 8 == len(result.rows)
    assert sorted(runs) == [t.number for t in study.trials] == list(range(8))
    for trial in study.trials:
        run = runs[trial.number]
        assert run.data.tags["optuna.trial"] == str(trial.number)
        assert float(run.data.params["eta"]) == trial.params["eta"]
        assert run.data.params["sizes"] == f"64-{trial.params['hidden']}-10"
        assert run.data.params["seed"] == str(trial.params["seed"])
        if trial.state == TrialState.COMPLETE:
            assert run.data.tags["status"] == "finished"
            assert trial.value == pytest.approx(run.data.metrics[spec.metric])
        else:
            assert trial.state == TrialState.PRUNED and run.data.tags["status"] == "pruned"
        history = metric_history(client, run.info.run_id, [spec.metric])
        assert trial.intermediate_values == pytest.approx({row["epoch"]: row[spec.metric] for row in history})
    files = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"optuna_trials.csv", "optuna_trials.png", "results.csv"} <= files


def test_pruned_configs_stop_inside_the_shared_program(finished):
    tmp, result, client = finished
    study, runs = load_study(tmp, parse_spec(SPEC)), children(client, result)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    bad = [t for t in study.trials if t.params["eta"] == 1e-4]
    assert [t.number for t in bad] == [5, 6] and all(t.state == TrialState.PRUNED for t in bad)
    assert all(t.number >= 5 for t in pruned)  # never in the first batch: no completed trials to compare with
    assert all(max(t.intermediate_values) == 1 for t in bad)
    for trial in pruned:
        run = runs[trial.number]
        stopped = int(run.data.tags[STOPPED_AT])
        assert stopped < 3 and run.data.tags["jaxbp.epochs"] == str(stopped)
        assert len(client.get_metric_history(run.info.run_id, "train_cost_running")) == stopped
        assert max(trial.intermediate_values) == stopped
    assert all(runs[t.number].data.tags["status"] == "finished" for t in study.trials if t.number < 5)


def test_the_study_has_its_own_sqlite_file_beside_mlflow_db(finished):
    tmp, _, _ = finished

    def tables(db):
        with sqlite3.connect(db) as con:
            return {name for (name,) in con.execute("select name from sqlite_master where type = 'table'")}

    assert "studies" in tables(tmp / "optuna.db") and "experiments" not in tables(tmp / "optuna.db")
    assert "experiments" in tables(tmp / "mlflow.db") and "studies" not in tables(tmp / "mlflow.db")


def test_storage_defaults_and_refusals(tmp_path):
    assert default_storage(f"sqlite:///{tmp_path}/mlflow.db", None) == f"sqlite:///{tmp_path}/optuna.db"
    assert default_storage("http://127.0.0.1:5000", "sqlite:///o.db") == "sqlite:///o.db"
    with pytest.raises(ValueError, match=r"needs \[search\] storage"):
        default_storage("postgresql://db/mlflow", None)
    with pytest.raises(ValueError, match="must not be the MLflow database"):
        default_storage("sqlite:///m.db", "sqlite:///m.db")


def test_a_store_without_a_default_study_database_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a non-SQLite store that needs no server
    uri = f"file://{tmp_path / 'mlruns'}"
    with pytest.raises(ValueError, match=r"needs \[search\] storage = ") as refused:
        run_sweep(parse_spec(SPEC), uri)
    assert "\n" not in str(refused.value)
    assert MlflowClient(uri).get_experiment_by_name("opt") is None  # nothing created
    assert not (tmp_path / "spool").exists()


def test_the_space_as_optuna_sees_it():
    spec = parse_spec({"name": "s", "dataset": "digits", "mode": "optuna", "base": {"epochs": 2},
                       "sweep": {"eta": {"log_uniform": [0.01, 10.0]}, "l2": {"uniform": [0.0, 1e-3]},
                                 "seed": {"int_uniform": [0, 3]}, "hidden": [[30], [100, 30]],
                                 "activation": {"choice": ["sigmoid", "tanh"]}},
                       "search": {"sampler": "random", "seed": 1}})
    search, study = OptunaSearch(spec, URI), optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        point = search.suggest(trial)
        assert list(point) == ["eta", "l2", "seed", "hidden", "activation"]
        assert 0.01 <= point["eta"] <= 10 and 0 <= point["l2"] <= 1e-3 and point["seed"] in range(4)
        assert point["hidden"] in ([30], [100, 30]) and trial.params["hidden"] in ("30", "100-30")
        assert point["activation"] in ("sigmoid", "tanh")
        study.tell(trial, 0.0)
    dist = study.trials[0].distributions
    assert dist["eta"].log and not dist["l2"].log and isinstance(dist["seed"], optuna.distributions.IntDistribution)


@pytest.mark.parametrize(("metric", "status", "history", "told"), [
    ("validation_accuracy", "finished", [0.5, 0.7], 0.7),
    ("validation_accuracy", "diverged", [0.5, 0.7, 0.1], 0.1),  # its worst finite value
    ("validation_cost", "diverged", [0.3, 0.9, math.nan], 0.9),
    ("validation_cost", "diverged", [math.inf], None),  # none finite: FAIL
    ("validation_accuracy", "pruned", [0.5], "PRUNED"),
])
def test_what_a_config_is_told(metric, status, history, told):
    spec = parse_spec({"name": "t", "mode": "optuna", "metric": metric, "sweep": {"eta": [0.1, 1.0]}})
    study = optuna.create_study(direction="maximize" if spec.maximize else "minimize")
    trial = study.ask()
    trial.report(history[0], 1)
    OptunaSearch(spec, URI).tell(study, trial, [{"epoch": e, metric: v} for e, v in enumerate(history, 1)], status)
    (frozen,) = study.trials
    if told == "PRUNED":
        assert frozen.state == TrialState.PRUNED
    elif told is None:
        assert frozen.state == TrialState.FAIL
    else:
        assert frozen.state == TrialState.COMPLETE and frozen.value == told


@pytest.mark.parametrize(("sweep", "match"), [
    ({"eta": {"log_uniform": [0.01, 10.0]}, "hidden": [[30], [100]]}, "two or more numeric ranges"),
    ({"eta": [0.1, 1.0], "l2": [0.0, 1e-4]}, "two or more numeric ranges"),
])
def test_cmaes_is_refused_where_it_cannot_work(sweep, match):
    spec = parse_spec({"name": "c", "mode": "optuna", "sweep": sweep, "search": {"sampler": "cmaes"}})
    with pytest.raises(ValueError, match=match):
        OptunaSearch(spec, URI)


def test_cmaes_proposes_numeric_axes_and_draws_categorical_ones():
    spec = parse_spec({"name": "c", "mode": "optuna", "search": {"sampler": "cmaes", "seed": 2},
                       "sweep": {"eta": {"log_uniform": [0.01, 10.0]}, "l2": {"uniform": [0.0, 1.0]},
                                 "hidden": [[30], [100]]}})
    search = OptunaSearch(spec, URI)
    study = optuna.create_study(sampler=optuna.samplers.CmaEsSampler(seed=2, warn_independent_sampling=False))
    points = []
    for _ in range(12):
        trial = study.ask()
        points.append(search.suggest(trial))
        study.tell(trial, -abs(points[-1]["l2"] - 0.5))
    assert all(0.01 <= p["eta"] <= 10 and 0 <= p["l2"] <= 1 and p["hidden"] in ([30], [100]) for p in points)
    assert len({p["eta"] for p in points}) == 12


def test_resume_of_a_finished_sweep_returns_it(finished, monkeypatch):
    tmp, result, _ = finished
    monkeypatch.setattr("jaxbp.sweeps.search.optuna.OptunaSearch.run", lambda *a: pytest.fail("ran again"))
    again = run_sweep(parse_spec(SPEC), store(tmp), resume=True)
    assert again.already_finished and again.parent_run_id == result.parent_run_id


def test_a_batch_cut_short_is_asked_again_on_resume(tmp_path, monkeypatch):
    """A session that dies while training its second batch leaves those trials RUNNING, nothing logged: resume
    marks them FAIL, asks their params again under new numbers, and ends with ``trials`` configs."""
    spec = parse_spec({"name": "crash", "dataset": "digits", "mode": "optuna",
                       "base": {"sizes": [64, 10, 10], "epochs": 2},
                       "sweep": {"eta": {"log_uniform": [0.1, 5.0]}}, "search": {"trials": 4, "batch": 2}})
    real, calls = Population.train, []

    def dies_in_the_second_batch(self, until, progress=None):
        calls.append(until)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, until, progress)

    monkeypatch.setattr(Population, "train", dies_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, store(tmp_path))
    monkeypatch.setattr(Population, "train", real)
    result = run_sweep(spec, store(tmp_path), resume=True)
    study = load_study(tmp_path, spec)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 2 + \
        [TrialState.COMPLETE] * 2
    assert [t.params for t in study.trials[4:]] == [t.params for t in study.trials[2:4]]
    assert [t.user_attrs["jaxbp.replaces"] for t in study.trials[4:]] == [2, 3]
    runs = children(MlflowClient(store(tmp_path)), result)
    assert sorted(runs) == [0, 1, 4, 5]
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(runs[t.number].data.metrics["validation_accuracy"])


@pytest.mark.slow
def test_resume_after_kill_9_ends_with_trials_configs_each_once(tmp_path):
    """Killed after 2 children of the first batch are logged: resume tells those from MLflow, marks the others
    of that batch FAIL and asks their params again, and ends with exactly ``trials`` children."""
    path = tmp_path / "kill.toml"
    path.write_text('name = "kill"\ndataset = "digits"\nmode = "optuna"\n[base]\nsizes = [64, 10, 10]\nepochs = 3\n'
                    '[sweep]\neta = {log_uniform = [0.1, 5.0]}\nhidden = [[10], [20]]\n'
                    '[search]\ntrials = 6\nbatch = 3\nseed = 0\n')
    env = {**os.environ, "JAXBP_SPOOL": str(tmp_path / "spool")}
    args = [JAXBP, "sweep", str(path), "--tracking-uri", store(tmp_path)]
    kill_9_and_resume(args, env, lambda: count_children(tmp_path / "mlflow.db") >= 2)
    client = MlflowClient(store(tmp_path))
    exp = client.get_experiment_by_name("kill")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`jaxbp.kind` = 'sweep'")
    assert parent.data.tags["jaxbp.sweep_status"] == "finished"
    runs = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    indices = sorted(int(r.data.tags["jaxbp.config_index"]) for r in runs)
    assert len(indices) == 6 == len(set(indices)) and all(r.info.status == "FINISHED" for r in runs)
    study = load_study(tmp_path, load_spec(path))
    told = {t.number: t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert sorted(told) == indices and {0, 1} <= set(told)  # 0 and 1 told from their logged children
    abandoned = [t for t in study.trials if t.state == TrialState.FAIL]
    assert {t.number for t in abandoned}.isdisjoint(indices)
    for t in abandoned:  # each asked again, under a new number
        assert any(r.user_attrs.get("jaxbp.replaces") == t.number and r.params == t.params for r in told.values())
    for r in runs:
        value = told[int(r.data.tags["jaxbp.config_index"])].value
        assert math.isclose(value, r.data.metrics["validation_accuracy"], rel_tol=1e-6)
