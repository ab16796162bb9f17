"""Successive halving and Hyperband on a real SQLite store: each config's history is its history alone up to
where it stopped; each rung keeps the top 1/factor; the ladder is recorded; kill -9 and resume; the shrinking
config axis sharded over 4 forced CPU devices."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import jaxbp
from helpers import kill_9_and_resume, store
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.search.halving import bracket_sizes, rung_epochs
from jaxbp.sweeps.spec import expand, load_spec, parse_spec

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
SPEC = {"name": "halving", "dataset": "digits", "mode": "halving",
        "base": {"sizes": [64, 12, 10], "epochs": 4, "batch_size": 20},
        "search": {"min_epochs": 1, "reduction_factor": 2},
        "sweep": {"eta": [0.1, 0.5, 1.0, 3.0, 6.0, 300.0], "hidden": [[8], [12]]}}  # 12 configs, 2 shapes


def children(client, parent):
    exp = client.get_run(parent).info.experiment_id
    runs = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent}'")
    return {int(r.data.tags["jaxbp.config_index"]): r for r in runs}


def history(client, run, key="validation_accuracy"):
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


def parent_csv(client, parent, name, tmp_path) -> list[dict]:
    path = client.download_artifacts(parent, name, str(tmp_path))
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("halving")
    os.environ["JAXBP_SPOOL"] = str(tmp / "spool")
    spec = parse_spec(SPEC)
    result = run_sweep(spec, store(tmp))
    return spec, result, MlflowClient(store(tmp)), tmp


def test_each_config_is_its_history_alone_up_to_where_it_stopped(halved):
    spec, result, client, _ = halved
    runs = children(client, result.parent_run_id)
    items = expand(spec, (64, 10))
    assert sorted(runs) == list(range(len(items)))
    data = jaxbp.load_dataset("digits")
    for i in (0, 3, 9):  # a few configs, pruned and kept: each against itself trained alone
        swept = history(client, runs[i], "train_cost_running")
        alone = [h["train_cost_running"] for h in jaxbp.train(items[i][1], data).history]
        np.testing.assert_allclose(swept, alone[: len(swept)], rtol=1e-4)
    for run in runs.values():
        epochs = int(run.data.tags["jaxbp.epochs"])
        assert len(history(client, run)) == epochs  # the real history: epochs 1…stopped, or 1…max
        if run.data.tags["status"] == "pruned":
            assert int(run.data.tags["jaxbp.stopped_at_epoch"]) == epochs < spec.epochs
            assert "by successive halving" in run.data.tags["jaxbp.message"]
        else:
            assert "jaxbp.stopped_at_epoch" not in run.data.tags


def check_ladder(client, runs: dict, rungs: list[dict], factor: int) -> None:
    """Each rung kept exactly the best ⌊n/factor⌋ (at least one), by validation accuracy at its epoch, of the
    configs alive at its end; the others stopped there."""
    accuracy = {i: history(client, run) for i, run in runs.items()}
    cost = {i: history(client, run, "train_cost_running") for i, run in runs.items()}
    entered = sorted(runs)
    for rung in rungs[:-1]:
        e, n_in, n_kept = int(rung["epochs"]), int(rung["configs_in"]), int(rung["configs_kept"])
        assert n_in == len(entered) and n_kept == max(1, n_in // factor)
        alive = [i for i in entered if len(cost[i]) >= e and np.isfinite(cost[i][e - 1])]
        best = sorted(alive, key=lambda i: (-accuracy[i][e - 1], i))[:n_kept]
        assert sorted(i for i in runs if len(cost[i]) > e) == sorted(best)
        for i in set(alive) - set(best):
            assert runs[i].data.tags["status"] == "pruned" and len(cost[i]) == e
        entered = sorted(best)


def test_each_rung_keeps_the_top_one_over_factor(halved, tmp_path):
    spec, result, client, _ = halved
    runs = children(client, result.parent_run_id)
    rungs = parent_csv(client, result.parent_run_id, "rungs.csv", tmp_path)
    assert [(r["rung"], r["epochs"]) for r in rungs] == [("1", "1"), ("2", "2"), ("3", "4")]
    check_ladder(client, runs, rungs, 2)
    assert result.rows[0].status == "finished"  # configs that ran to the end rank before pruned ones


def test_the_parent_records_the_search(halved, tmp_path):
    spec, result, client, tmp = halved
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["mode"] == "halving"
    assert json.loads(parent.data.params["search.reduction_factor"]) == 2
    names = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"rungs.csv", "ladder.png", "results.csv"} <= names


def test_ladder_arithmetic():
    assert rung_epochs(1, 3, 27) == [1, 3, 9, 27] and rung_epochs(2, 3, 20) == [2, 6, 18, 20]
    assert rung_epochs(5, 2, 5) == [5]
    brackets = bracket_sizes(54, 1, 3, 27, None)
    assert [start for start, _ in brackets] == [1, 3, 9, 27]
    assert sum(n for _, n in brackets) == 54 and [n for _, n in brackets] == sorted((n for _, n in brackets),
                                                                                     reverse=True)
    assert [n for _, n in bracket_sizes(49, 1, 3, 27, None)] == [27, 12, 6, 4]  # Li et al.'s table for R = 27
    assert bracket_sizes(10, 1, 3, 27, 2) == [(1, 7), (3, 3)]
    with pytest.raises(ValueError, match="brackets = 5, but .* there are only 4"):
        bracket_sizes(10, 1, 3, 27, 5)


def test_hyperband_runs_every_config_once_in_its_bracket(tmp_path):
    spec = parse_spec({**SPEC, "name": "hyperband", "mode": "hyperband",
                       "search": {"min_epochs": 1, "reduction_factor": 2, "seed": 3},
                       "sweep": {"eta": [0.1, 0.5, 1.0, 2.0, 3.0, 6.0, 10.0, 300.0]}})
    result = run_sweep(spec, store(tmp_path))
    client = MlflowClient(store(tmp_path))
    runs = children(client, result.parent_run_id)
    assert sorted(runs) == list(range(8))
    rungs = parent_csv(client, result.parent_run_id, "rungs.csv", tmp_path)
    brackets = sorted({int(r["bracket"]) for r in rungs})
    assert brackets == [1, 2, 3]  # from 1, 2 and 4 epochs
    firsts = [next(r for r in rungs if int(r["bracket"]) == b) for b in brackets]
    assert [int(r["epochs"]) for r in firsts] == [1, 2, 4]
    assert sum(int(r["configs_in"]) for r in firsts) == 8
    assert {r.status for r in result.rows} <= {"finished", "pruned", "diverged"}


def test_running_a_search_on_ray_is_refused_in_one_line(tmp_path):
    class Elsewhere:
        def run(self, *args):
            raise AssertionError("not called")

    with pytest.raises(ValueError, match="mode = 'halving' trains in this process"):
        run_sweep(parse_spec(SPEC), store(tmp_path), executor=Elsewhere())
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_resume_after_kill_9_finishes_the_search_with_each_config_once(tmp_path):
    text = ('name = "killhalving"\ndataset = "digits"\nmode = "halving"\n[base]\nsizes = [64, 12, 10]\n'
            'epochs = 8\nbatch_size = 20\n[search]\nmin_epochs = 2\nreduction_factor = 2\n'
            '[sweep]\neta = [0.3, 1.0, 2.0, 3.0]\nhidden = [[8], [12]]\n')
    (tmp_path / "kill.toml").write_text(text)
    env = {**os.environ, "JAXBP_SPOOL": str(tmp_path / "spool")}
    args = [JAXBP, "sweep", str(tmp_path / "kill.toml"), "--tracking-uri", store(tmp_path)]
    # killed after the second rung's save: the first rung's pruned configs are logged
    kill_9_and_resume(args, env, lambda: any(json.loads(p.read_text())["rung"] >= 1
                                             for p in (tmp_path / "spool").glob("*/search/state.json")), within=300)
    client = MlflowClient(store(tmp_path))
    exp = client.get_experiment_by_name("killhalving")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`jaxbp.kind` = 'sweep'")
    runs = children(client, parent.info.run_id)
    assert sorted(runs) == list(range(8)) and len(client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")) == 8
    rungs = parent_csv(client, parent.info.run_id, "rungs.csv", tmp_path)
    assert [int(r["configs_in"]) for r in rungs] == [8, 4, 2]
    check_ladder(client, runs, rungs, 2)  # the rung ranked again after the kill kept what it had to
    spec, data = load_spec(tmp_path / "kill.toml"), jaxbp.load_dataset("digits")
    items = expand(spec, (64, 10))
    for run in runs.values():
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_cost_running")]
        assert steps == list(range(1, len(steps) + 1))  # continuous: no epoch twice, none missing
    for i in [i for i, run in runs.items() if len(history(client, run)) == 8][:2]:  # survivors, across the kill
        alone = [h["train_cost_running"] for h in jaxbp.train(items[i][1], data).history]
        np.testing.assert_allclose(history(client, runs[i], "train_cost_running"), alone, rtol=1e-4)


SHARDED = """
import json, os, jax, jaxbp
from mlflow.tracking import MlflowClient
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec
from jaxbp.training.cohort import Cohort
spec = parse_spec(json.loads(os.environ["SPEC"]))
result = run_sweep(spec, os.environ["STORE"])
client = MlflowClient(os.environ["STORE"])
runs = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
cohort = Cohort([jaxbp.TrainConfig(sizes=(2, 4, 2), eta=e, epochs=3, batch_size=8) for e in (0.5, 1, 2, 3, 4, 5)],
                jaxbp.load_dataset("xor"))
shards = [sorted(s.data.shape[0] for s in cohort.params[0].w.addressable_shards)]
cohort.train(1)
for i in (0, 2, 4):
    cohort.prune(i, "test")
cohort.keep([1, 3, 5])
shards.append(sorted(s.data.shape[0] for s in cohort.params[0].w.addressable_shards))
print(json.dumps({"devices": jax.local_device_count(), "shards": shards,
                  "epochs": {r.data.tags["jaxbp.config_index"]: int(r.data.tags["jaxbp.epochs"]) for r in runs},
                  "cost": {r.data.tags["jaxbp.config_index"]: r.data.metrics["train_cost_running"] for r in runs}}))
"""


SMALL = {"name": "sharded", "dataset": "xor", "mode": "halving", "base": {"sizes": [2, 4, 2], "epochs": 4,
                                                                         "batch_size": 8},
         "search": {"min_epochs": 1, "reduction_factor": 2},
         "sweep": {"eta": [0.3, 1.0, 2.0, 3.0, 5.0, 8.0], "hidden": [[4], [6]]}}


@pytest.mark.slow
def test_the_shrinking_config_axis_stays_sharded_over_four_devices(tmp_path):
    """On 4 forced CPU devices: 6 configs are padded to 8 (2 per device), 3 survivors to 4 (1 per device); a
    halving search there ends as on one device (this process)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "SPEC": json.dumps(SMALL),
           "STORE": store(tmp_path / "four"), "JAXBP_SPOOL": str(tmp_path / "spool4")}
    (tmp_path / "four").mkdir()
    done = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    four = json.loads(done.stdout.strip().splitlines()[-1])
    assert four["devices"] == 4 and four["shards"] == [[2, 2, 2, 2], [1, 1, 1, 1]]
    one = run_sweep(parse_spec(SMALL), store(tmp_path))
    client = MlflowClient(store(tmp_path))
    runs = children(client, one.parent_run_id)
    assert four["epochs"] == {str(i): int(r.data.tags["jaxbp.epochs"]) for i, r in runs.items()}
    for i, run in runs.items():
        assert four["cost"][str(i)] == pytest.approx(run.data.metrics["train_cost_running"], rel=1e-4, nan_ok=True)
