"""run_sweep on a real SQLite store: layout of parent and children, equality with training alone,
divergence, resume after kill -9, a tracking server that goes away, bad input."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import jaxbp
from helpers import count_children, free_port, kill_9_and_resume, store
from jaxbp.app.ui import start_server, stop_server, wait_healthy
from jaxbp.sweeps.results import TOP_FIGURES
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import expand, parse_spec

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
SPEC = {"name": "tiny", "dataset": "xor", "base": {"sizes": [2, 4, 2], "epochs": 3, "batch_size": 8},
        "sweep": {"eta": [0.5, 3.0], "hidden": [[4], [8]]}}  # 4 configs: one more than TOP_FIGURES


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished 4-config sweep (2 groups) in a fresh store."""
    tmp = tmp_path_factory.mktemp("sweep")
    os.environ["JAXBP_SPOOL"] = str(tmp / "spool")
    result = run_sweep(parse_spec(SPEC), store(tmp))
    return result, MlflowClient(store(tmp))


def test_parent_and_children_layout(finished):
    result, client = finished
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["jaxbp.sweep_status"] == "finished"
    assert parent.data.params["dataset"] == "xor" and json.loads(parent.data.params["axis.eta"]) == [0.5, 3.0]
    assert parent.data.tags["best_run_id"] == result.rows[0].run_id
    assert parent.data.metrics["best_validation_accuracy"] == pytest.approx(result.rows[0].value)
    files = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"spec.toml", "results.csv", "learning_curves.png", "validation_accuracy_vs_eta.png",
            "validation_accuracy_heatmap.png"} <= files
    children = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(children) == 4 == len(result.rows)
    assert {(c.data.params["eta"], c.data.params["sizes"]) for c in children} == {
        (e, s) for e in ("0.5", "3.0") for s in ("2-4-2", "2-8-2")}
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["status"] == "finished"
        assert set(jaxbp.TrainConfig().to_dict()) <= set(child.data.params)
        assert [m.step for m in client.get_metric_history(child.info.run_id, "validation_accuracy")] == [1, 2, 3]
        assert "saturated_fraction_2" in child.data.metrics and "grad_agreement_end" in child.data.metrics
        assert child.data.metrics["grad_agreement_end"] < 1e-5
        assert child.data.tags["jaxbp.epochs"] == "3" and "test_cost" in child.data.metrics
        # the run spans its training: at least its epochs' update time, and it ends before the parent does
        trained_ms = 1000 * sum(m.value for m in client.get_metric_history(child.info.run_id, "epoch_seconds"))
        assert child.info.end_time - child.info.start_time >= trained_ms - 2
        assert parent.info.start_time <= child.info.start_time <= child.info.end_time <= parent.info.end_time
    values = [r.value for r in result.rows]
    assert values == sorted(values, reverse=True)
    for rank, row in enumerate(result.rows, start=1):  # per-layer figures for the best TOP_FIGURES only
        artifacts = {a.path for a in client.list_artifacts(row.run_id)}
        assert artifacts == {"checkpoint.msgpack"} | ({"learning_curves.png"} if rank <= TOP_FIGURES else set())


def test_results_csv_has_every_split_and_the_epochs(finished, tmp_path):
    result, client = finished
    path = client.download_artifacts(result.parent_run_id, "results.csv", str(tmp_path))
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["run_id"] for r in table] == [r.run_id for r in result.rows]
    for line, row in zip(table, result.rows):
        child = client.get_run(row.run_id).data.metrics
        for split in ("train", "validation", "test"):
            for kind in ("accuracy", "cost"):
                key = f"{split}_{kind}" + ("_running" if split == "train" else "")
                assert float(line[f"final_{key}"]) == pytest.approx(child[key])
        assert line["final_train_cost"] == line["final_train_accuracy"] == ""  # measured with measure = "full" only
        assert line["epochs"] == "3" and float(line["validation_accuracy"]) == pytest.approx(row.value)


def test_a_config_in_a_sweep_equals_the_config_alone(finished):
    result, client = finished
    data = jaxbp.load_dataset("xor")
    for _, config in expand(parse_spec(SPEC), (2, 2)):
        alone = jaxbp.train(config, data).history
        (row,) = [r for r in result.rows if r.params["eta"] == str(config.eta)
                  and r.sizes == "-".join(map(str, config.sizes))]
        swept = [m.value for m in sorted(client.get_metric_history(row.run_id, "train_cost_running"),
                                         key=lambda m: m.step)]
        np.testing.assert_allclose(swept, [h["train_cost_running"] for h in alone], rtol=1e-4)


def test_a_group_trains_in_chunks_each_config_as_alone(tmp_path, monkeypatch):
    """$JAXBP_CHUNK = 2: the 5 configs of one shape train as programs of 2, 2 and 1; each is logged once, as it
    trains alone, and its MLflow description says what each metric is."""
    monkeypatch.setenv("JAXBP_CHUNK", "2")
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    spec = parse_spec({**SPEC, "name": "chunks", "sweep": {"eta": [0.2, 0.5, 1.0, 2.0, 3.0]}})
    result = run_sweep(spec, store(tmp_path))
    client, data = MlflowClient(store(tmp_path)), jaxbp.load_dataset("xor")
    assert sorted(r.eta for r in result.rows) == [0.2, 0.5, 1.0, 2.0, 3.0]
    for (_, config), row in zip(expand(spec, (2, 2)), sorted(result.rows, key=lambda r: r.index)):
        swept = [m.value for m in sorted(client.get_metric_history(row.run_id, "train_cost_running"),
                                         key=lambda m: m.step)]
        np.testing.assert_allclose(swept, [h["train_cost_running"] for h in jaxbp.train(config, data).history],
                                   rtol=1e-4)
        note = client.get_run(row.run_id).data.tags["mlflow.note.content"]
        assert "`train_cost_running`: mean over the epoch's mini-batches" in note and "`train_cost`:" not in note


def test_a_diverging_config_is_marked_and_the_others_finish(tmp_path):
    spec = parse_spec({"name": "div", "dataset": "xor", "metric": "train_accuracy_running",
                       "base": {"sizes": [2, 8, 2], "epochs": 8, "batch_size": 4, "activation": "relu",
                                "output_activation": "identity"}, "sweep": {"eta": [0.05, 1e4]}})
    result = run_sweep(spec, store(tmp_path))
    status = {r.eta: r.status for r in result.rows}
    assert status == {0.05: "finished", 1e4: "diverged"}
    assert result.rows[-1].eta == 1e4  # diverged ranks last


def _children_by_index(tmp_path) -> list[int]:
    client = MlflowClient(store(tmp_path))
    exp = client.get_experiment_by_name("kill")
    parents = client.search_runs([exp.experiment_id], "tags.`jaxbp.kind` = 'sweep'")
    assert len(parents) == 1 and parents[0].data.tags["jaxbp.sweep_status"] == "finished"
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert all(c.info.status == "FINISHED" for c in children)
    return sorted(int(c.data.tags["jaxbp.config_index"]) for c in children)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_children", [0, 2])
def test_resume_after_kill_9_ends_with_every_config_exactly_once(tmp_path, kill_after_children):
    spec = tmp_path / "kill.toml"
    spec.write_text('name = "kill"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 40\nbatch_size = 4\n'
                    '[sweep]\neta = [0.5, 1.0, 2.0]\nhidden = [[4], [6], [8]]\n')
    env = {**os.environ, "JAXBP_SPOOL": str(tmp_path / "spool")}
    args = [JAXBP, "sweep", str(spec), "--tracking-uri", store(tmp_path)]
    kill_9_and_resume(args, env, lambda: (tmp_path / "mlflow.db").exists()
                      and count_children(tmp_path / "mlflow.db") >= kill_after_children)
    assert _children_by_index(tmp_path) == list(range(9))


def test_unreachable_tracking_uri_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="is unreachable"):
        run_sweep(parse_spec(SPEC), "http://127.0.0.1:9")



@pytest.mark.server
@pytest.mark.slow
def test_a_tracking_server_that_goes_away_keeps_results_for_resume(tmp_path):
    """A real mlflow server is killed mid-sweep: the sweep fails clearly and keeps what it trained; with the
    server back, --resume logs the kept results and ends with every config exactly once."""
    spec = tmp_path / "kill.toml"
    spec.write_text('name = "kill"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 30\nbatch_size = 4\n'
                    '[sweep]\neta = [0.5, 1.0, 2.0]\nhidden = [[4], [6], [8]]\n')
    port, backend = free_port(), store(tmp_path)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "JAXBP_SPOOL": str(tmp_path / "spool"), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    server = start_server(backend, port=port, cwd=tmp_path)
    try:
        wait_healthy(url, server)
        sweep = subprocess.Popen([JAXBP, "sweep", str(spec), "--tracking-uri", url], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 240
        while count_children(tmp_path / "mlflow.db") < 1:
            assert sweep.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop_server(server)
    out, _ = sweep.communicate(timeout=400)
    assert sweep.returncode == 1 and "stopped answering" in out and "--resume" in out, out[-2000:]
    assert list((tmp_path / "spool").glob("*/*/record.json")), "finished configs must be kept"
    server = start_server(backend, port=port, cwd=tmp_path)
    try:
        wait_healthy(url, server)
        resumed = subprocess.run([JAXBP, "sweep", str(spec), "--tracking-uri", url, "--resume"], env=env,
                                 capture_output=True, text=True, timeout=400)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    finally:
        stop_server(server)
    assert _children_by_index(tmp_path) == list(range(9))


def test_resume_of_a_finished_sweep_returns_it_without_training(finished, monkeypatch):
    result, client = finished
    monkeypatch.setattr("jaxbp.sweeps.executors.local.train_together", lambda *a, **k: pytest.fail("retrained"))
    uri = result.tracking_uri
    again = run_sweep(parse_spec(SPEC), uri, resume=True)
    assert again.already_finished and again.parent_run_id == result.parent_run_id
    assert [r.run_id for r in again.rows] == [r.run_id for r in result.rows]
