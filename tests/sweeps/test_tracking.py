"""The MLflow side: URI resolution, reachability, batched logging, the layout of a child run."""

import math
import socket

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from jaxbp.sweeps.tracking import Tracker, check_reachable, compare_url, config_params, history_metrics, resolve_uri


def test_resolve_uri(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555")
    assert resolve_uri() == "http://127.0.0.1:5555"
    assert resolve_uri("sqlite:///x.db") == "sqlite:///x.db"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_reachable(tmp_path):
    check_reachable(f"sqlite:///{tmp_path / 'm.db'}")
    with pytest.raises(ValueError, match=r"tracking server http://127.0.0.1:\d+ is unreachable.*jaxbp ui"):
        check_reachable(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ValueError, match="does not exist or is not writable"):
        check_reachable(f"sqlite:///{tmp_path / 'no' / 'such' / 'm.db'}")
    with pytest.raises(ValueError, match="is not one MLflow knows"):
        check_reachable("ftp://example")


def test_history_metrics_and_params():
    history = [{"epoch": 1, "train_cost": 0.5, "validation_accuracy": None},
               {"epoch": 2, "train_cost": float("inf"), "validation_accuracy": None}]
    metrics = history_metrics(history)
    assert [(m.key, m.step) for m in metrics] == [("train_cost", 1), ("train_cost", 2)]
    assert math.isnan(metrics[1].value)
    assert config_params({"sizes": [784, 30, 10], "output_activation": None, "eta": 3.0}) == {
        "sizes": "784-30-10", "output_activation": "none", "eta": "3.0"}


def test_log_is_batched_within_mlflow_limits(tmp_path, monkeypatch):
    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "t")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    calls = []
    real = MlflowClient.log_batch
    monkeypatch.setattr(MlflowClient, "log_batch", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    monkeypatch.setattr(MlflowClient, "log_metric", lambda *a, **k: pytest.fail("one call per value"))
    metrics = [Metric("m", float(i), 0, i) for i in range(2500)]
    tracker.log(run_id, params={f"p{i}": i for i in range(150)}, metrics=metrics, tags={"t": "x"})
    assert len(calls) == 4  # 2500 metrics in chunks of 800
    run = tracker.client.get_run(run_id)
    assert len(run.data.params) == 150 and run.data.tags["t"] == "x"
    assert len(tracker.client.get_metric_history(run_id, "m")) == 2500


def test_finished_children_deletes_half_logged_ones(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}", "t")
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    ids = []
    for index, finish in [(0, True), (1, False), (0, True)]:
        run = tracker.client.create_run(tracker.experiment_id, tags={
            "mlflow.parentRunId": parent, "jaxbp.config_index": str(index)})
        if finish:
            tracker.client.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    done = tracker.finished_children(parent)
    assert list(done) == [0] and len(tracker.children(parent)) == 1


def test_compare_url():
    url = compare_url("http://127.0.0.1:5000/", "3", ["a", "b"])
    assert url == 'http://127.0.0.1:5000/#/compare-runs?runs=["a","b"]&experiments=["3"]'
