"""Population-based training: exploit copies weights and optimizer state bit for bit; a PBT sweep on a real
SQLite store logs η per epoch, lineages and the parent's pbt.csv/pbt.png; a lineage replays to the logged
weights; a kill -9 resumes to the same schedule as an uninterrupted run."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import jaxbp
from helpers import store
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.search.pbt import LINEAGE_TAG, PopulationBasedTraining, quantile_size
from jaxbp.sweeps.spec import expand, parse_spec
from jaxbp.training.checkpoint import load_checkpoint
from jaxbp.training.cohort import Cohort
from jaxbp.training.loop import config_keys, initial_params, make_epoch, on_device
from jaxbp.training.optim import make_optimizer

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
EPOCHS = 6
# 16 configs in two shapes (hidden 8, hidden 12): two cohorts of 8, so quantile 0.25 makes 2 copies per cohort
SPEC = {"name": "pbt", "dataset": "digits", "mode": "pbt",
        "base": {"sizes": [64, 8, 10], "epochs": EPOCHS, "batch_size": 20, "optimizer": "momentum"},
        "sweep": {"eta": [0.05, 1.0], "l2": [0.0, 2.0], "seed": [0, 1], "hidden": [[8], [12]]},
        "search": {"interval": 2, "quantile": 0.25, "perturb": [0.5, 1.5], "seed": 3}}


def steps(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


@pytest.fixture(autouse=True)
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One finished PBT sweep of SPEC in a fresh SQLite store: (result, client, children by index, events)."""
    tmp = tmp_path_factory.mktemp("pbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXBP_SPOOL", str(tmp / "spool"))
        result = run_sweep(parse_spec(SPEC), store(tmp))
    client = MlflowClient(store(tmp))
    children = {int(c.data.tags["jaxbp.config_index"]): c for c in client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")}
    with open(client.download_artifacts(result.parent_run_id, "pbt.csv", str(tmp))) as f:
        events = [{k: float(v) if "eta" in k or "l2" in k else v if "name" in k else int(v) for k, v in row.items()}
                  for row in csv.DictReader(f)]
    return result, client, children, events, tmp


def lineage_of(client, run_id: str, folder: Path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, "lineage.json", str(folder))).read_text())


def test_quantile_size_rounds_half_up_with_at_least_one_and_never_overlapping():
    assert [quantile_size(n, 0.25) for n in range(1, 11)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert [quantile_size(n, 0.5) for n in (2, 3, 5, 7)] == [1, 1, 2, 3]
    assert quantile_size(40, 0.1) == 4


def test_exploit_copies_parameters_and_optimizer_state_bit_for_bit():
    spec = parse_spec({**SPEC, "sweep": {"eta": [0.05, 0.2, 1.0, 3.0], "l2": [0.0, 2.0]}})
    data = jaxbp.load_dataset("digits")
    configs = [c for _, c in expand(spec, (64, 10))]
    cohort = Cohort(configs, data)
    cohort.train(2)
    params, opt_state = jax.device_get((cohort.params, cohort.opt_state))
    pbt = PopulationBasedTraining(spec)
    group = list(range(10, 10 + len(configs)))  # config indices in a sweep need not be the cohort's
    events = pbt.exploit(cohort, group, generation=1)
    assert len(events) == quantile_size(8, 0.25) == 2 and all(e["epoch"] == 2 for e in events)
    ranked = sorted(range(8), key=lambda k: (-cohort.members[k].history[-1]["validation_accuracy"], k))
    assert {e["target"] - 10 for e in events} == set(ranked[-2:]) and {e["source"] - 10 for e in events} <= set(
        ranked[:2])
    after, after_state = jax.device_get((cohort.params, cohort.opt_state))
    copied = {}
    for e in events:
        t, s = e["target"] - 10, e["source"] - 10
        copied[t] = s
        for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(params), strict=True):
            np.testing.assert_array_equal(a[t], b[s])
        for a, b in zip(jax.tree.leaves(after_state._replace(hyperparams={})),
                        jax.tree.leaves(opt_state._replace(hyperparams={})), strict=True):
            np.testing.assert_array_equal(a[t], b[s])  # momentum trace and step count too
        hp, old = cohort.hyperparams(t), {k: float(v[s]) for k, v in opt_state.hyperparams.items()}
        assert e["eta_factor"] in (0.5, 1.5) and e["l2_factor"] in (0.5, 1.5)
        assert hp["eta"] == e["new_eta"] == np.float32(old["eta"] * e["eta_factor"])
        assert hp["l2"] == e["new_l2"] == np.float32(old["l2"] * e["l2_factor"])
    for k in set(range(8)) - set(copied):  # the others are untouched
        for a, b in zip(jax.tree.leaves((after, after_state)), jax.tree.leaves((params, opt_state)), strict=True):
            np.testing.assert_array_equal(a[k], b[k])
    cohort.train(3)  # and the program goes on from there, without recompiling
    assert len(cohort._compiled) == 1 and all(len(m.history) == 3 for m in cohort.members)


def test_a_diverged_config_is_never_ranked_and_a_missing_metric_ranks_last():
    spec = parse_spec({"name": "div", "dataset": "xor", "mode": "pbt", "metric": "train_cost_running",
                       "base": {"sizes": [2, 8, 2], "epochs": 8, "batch_size": 4, "activation": "relu",
                                "output_activation": "identity"}, "sweep": {"eta": [0.05, 0.1, 1e4]},
                       "search": {"quantile": 0.5}})
    pbt = PopulationBasedTraining(spec)
    assert pbt.value({"train_cost_running": None}) == pbt.value({"train_cost_running": float("nan")}) == -np.inf
    assert pbt.value({"train_cost_running": 0.5}) > pbt.value({"train_cost_running": 2.0})  # a cost: smaller is better
    cohort = Cohort([c for _, c in expand(spec, (2, 2))], jaxbp.load_dataset("xor"))
    cohort.train(2)
    assert cohort.members[2].result.status == "diverged" and cohort.live == [0, 1]
    (event,) = pbt.exploit(cohort, [0, 1, 2], generation=1)  # 2 live: one copies the other
    assert {event["target"], event["source"]} == {0, 1}
    better = min((0, 1), key=lambda k: cohort.members[k].history[-1]["train_cost_running"])
    assert event["source"] == better


@pytest.mark.slow  # the sweep of the fixture: 25–45 s on 2 CPU cores
def test_a_pbt_sweep_logs_eta_lineage_and_the_parents_files(swept):
    result, client, children, events, tmp = swept
    assert sorted(children) == list(range(16)) and all(c.data.tags["status"] == "finished" for c in children.values())
    files = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"pbt.csv", "pbt.png", "results.csv"} <= files
    items = expand(parse_spec(SPEC), (64, 10))
    eta = {i: steps(client, c.info.run_id, "eta") for i, c in children.items()}
    l2 = {i: steps(client, c.info.run_id, "l2") for i, c in children.items()}
    for i, child in children.items():
        assert sorted(eta[i]) == sorted(l2[i]) == list(range(1, EPOCHS + 1))
        assert eta[i][1] == pytest.approx(items[i][1].eta) and l2[i][1] == pytest.approx(items[i][1].l2)
        lineage = lineage_of(client, child.info.run_id, tmp / str(i))
        assert [s["epoch"] for s in lineage["schedule"]] == list(range(1, EPOCHS + 1))
        assert [s["eta"] for s in lineage["schedule"] if s["config"] == i] == [
            eta[i][s["epoch"]] for s in lineage["schedule"] if s["config"] == i]
        own = [e for e in events if e["target"] == i]
        assert [(e["epoch"], e["copied_from"]) for e in lineage["events"]] == [(e["epoch"], e["source"]) for e in own]
        tag = child.data.tags[LINEAGE_TAG]
        assert tag == "no copies" if not own else tag.count("copied config") == len(own)
    # two generations (epochs 2 and 4) × two cohorts × quantile_size(8) = 2 copies each
    assert sorted((e["generation"], e["epoch"]) for e in events) == [(1, 2)] * 4 + [(2, 4)] * 4
    metric = {i: steps(client, c.info.run_id, "validation_accuracy") for i, c in children.items()}
    for g, epoch in ((1, 2), (2, 4)):
        for hidden in (8, 12):
            cohort = [i for i, (p, _) in enumerate(items) if p["hidden"] == [hidden]]
            ranked = sorted(cohort, key=lambda i: (-metric[i][epoch], i))
            mine = [e for e in events if e["generation"] == g and e["target"] in cohort]
            assert {e["target"] for e in mine} == set(ranked[-2:]) and {e["source"] for e in mine} <= set(ranked[:2])
    for e in events:  # the target's η after the copy is the source's, times a perturb factor
        t, s, epoch = e["target"], e["source"], e["epoch"]
        assert e["eta_factor"] in (0.5, 1.5) and e["l2_factor"] in (0.5, 1.5)
        assert eta[t][epoch] == pytest.approx(e["old_eta"]) and eta[t][epoch + 1] == pytest.approx(e["new_eta"])
        assert eta[t][epoch + 1] == pytest.approx(eta[s][epoch] * e["eta_factor"], rel=1e-6)
        assert l2[t][epoch + 1] == pytest.approx(l2[s][epoch] * e["l2_factor"], rel=1e-6)


def replay(lineage: dict, configs: list, data) -> tuple:
    """Train the weights a lineage describes from its root, one epoch per schedule entry; (params, the last
    epoch's running train cost)."""
    root = configs[lineage["root"]["config"]]
    n_train = data.train.X.shape[0]
    params = initial_params(root)
    opt_state = make_optimizer(root, n_train, n_train // root.batch_size).init(params)
    epoch = jax.jit(make_epoch(root, n_train))
    X, Y = on_device(data, jnp.float32)["train"]
    for entry in lineage["schedule"]:
        hp = opt_state.hyperparams
        opt_state = opt_state._replace(hyperparams={**hp, "eta": jnp.float32(entry["eta"]),
                                                    "l2": jnp.float32(entry["l2"])})
        key = jax.random.fold_in(config_keys(configs[entry["config"]]).shuffle, entry["epoch"])
        params, opt_state, running = epoch(params, opt_state, key, X, Y)
    return params, float(running.cost)  # the last epoch's train_cost_running


@pytest.mark.slow
def test_a_lineage_replays_to_the_logged_weights(swept):
    result, client, children, events, tmp = swept
    spec = parse_spec(SPEC)
    data = jaxbp.load_dataset("digits")
    configs = [c for _, c in expand(spec, (64, 10))]
    # the config whose weights have the longest ancestry through configs of other seeds (own shuffle keys)
    lineages = {i: lineage_of(client, c.info.run_id, tmp / f"replay{i}") for i, c in children.items()}
    i = max(lineages, key=lambda i: (len({configs[s["config"]].seed for s in lineages[i]["schedule"]}),
                                     len({s["config"] for s in lineages[i]["schedule"]}), -i))
    lineage = lineages[i]
    assert lineage["root"]["config"] != i and len({s["config"] for s in lineage["schedule"]}) >= 2
    logged = steps(client, children[i].info.run_id, "train_cost_running")[EPOCHS]
    params, cost = replay(lineage, configs, data)
    assert cost == pytest.approx(logged, rel=1e-4)
    checkpoint = load_checkpoint(client.download_artifacts(children[i].info.run_id, "checkpoint.msgpack",
                                                           str(tmp / f"ckpt{i}")))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(checkpoint.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    # the replay can fail: without the copies (its own config all along) or with its own mini-batch order only
    alone = {**lineage, "root": {"config": i},
             "schedule": [{**s, "config": i, "eta": configs[i].eta, "l2": configs[i].l2} for s in lineage["schedule"]]}
    assert replay(alone, configs, data)[1] != pytest.approx(logged, rel=1e-3)
    assert len({configs[s["config"]].seed for s in lineage["schedule"]}) > 1
    own_batches = {**lineage, "schedule": [{**s, "config": i} for s in lineage["schedule"]]}
    assert replay(own_batches, configs, data)[1] != pytest.approx(logged, rel=1e-3)


KILL_SPEC = ('name = "pbtkill"\ndataset = "digits"\nmode = "pbt"\n[base]\nsizes = [64, 8, 10]\nepochs = 24\n'
             'batch_size = 20\n[sweep]\neta = [0.05, 0.3, 1.0, 3.0]\n[search]\ninterval = 2\nquantile = 0.25\n')


def _events(client, experiment: str) -> list[tuple]:
    exp = client.get_experiment_by_name(experiment)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`jaxbp.kind` = 'sweep'")
    assert parent.data.tags["jaxbp.sweep_status"] == "finished"
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["jaxbp.config_index"]) for c in children) == [0, 1, 2, 3]
    for c in children:
        assert sorted(steps(client, c.info.run_id, "eta")) == list(range(1, 25))
    folder = Path(client.download_artifacts(parent.info.run_id, "pbt.csv"))
    with folder.open() as f:
        return [(*(int(r[k]) for k in ("generation", "epoch", "target", "source")), round(float(r["new_eta"]), 5))
                for r in csv.DictReader(f)]


@pytest.mark.slow
def test_resume_after_kill_9_redoes_the_generation_and_draws_the_same(tmp_path, monkeypatch):
    spec = tmp_path / "pbtkill.toml"
    spec.write_text(KILL_SPEC)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for folder in (killed, whole):
        folder.mkdir()
    env = {**os.environ, "JAXBP_SPOOL": str(killed / "spool")}
    args = [JAXBP, "sweep", str(spec), "--tracking-uri", store(killed)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    saved = None
    while saved is None or json.loads(saved.read_text())["generation"] < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be killed"
        saved = next((killed / "spool").glob("*/search/state.json"), None)
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    generation = json.loads(saved.read_text())["generation"]
    assert generation < 11, "killed too late to test anything"
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    monkeypatch.setenv("JAXBP_SPOOL", str(whole / "spool"))
    run_sweep(spec, store(whole))
    after_kill, uninterrupted = (_events(MlflowClient(store(f)), "pbtkill") for f in (killed, whole))
    assert [e[0] for e in after_kill] == list(range(1, 12))  # 4 configs: one copy per generation
    assert after_kill == uninterrupted
