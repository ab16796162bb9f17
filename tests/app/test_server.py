"""jaxbp.app.server: a real `mlflow server` on loopback with SQLite in tmp_path; a run and an artifact
logged through it land in the store and the artifacts destination; --check; refusals in one line."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import free_port, listening
from jaxbp.app.batch import run_batch
from jaxbp.app.server import main
from jaxbp.app.ui import server_command

pytestmark = pytest.mark.server




@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`jaxbp server` with its defaults under a fresh --data-dir, on a free port."""
    data, port = tmp_path_factory.mktemp("serve") / "data", free_port()
    log = (data.parent / "server.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("jaxbp")), "server", "--data-dir", str(data),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)
    lines, deadline = [], time.monotonic() + 120
    while not any("ready" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        lines.append(proc.stdout.readline())
    lines.append(proc.stdout.readline())  # the line that tells clients what to use
    yield proc, port, data, "".join(lines)
    proc.send_signal(signal.SIGTERM)  # as Ctrl-C: the launcher stops its mlflow server
    assert proc.wait(timeout=60) == 0
    assert not listening(port)
    log.close()


def test_server_starts_healthy_and_prints_its_url(server, capsys):
    proc, port, data, printed = server
    url = f"http://127.0.0.1:{port}"
    assert f"MLflow tracking server ready: {url}" in printed
    assert f"sqlite:///{data / 'mlflow.db'}" in printed and f"MLFLOW_TRACKING_URI={url}" in printed
    assert (data / "mlflow.db").is_file()
    assert main(["--check", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"healthy: {url} (MLflow 3.") and len(out.splitlines()) == 1
    assert main(["--check", "--port", str(port)]) == 0  # --check alone: the server of --host/--port


def test_a_run_and_its_artifact_logged_through_the_server(server, tmp_path):
    proc, port, data, _ = server
    client = MlflowClient(f"http://127.0.0.1:{port}")
    exp = client.create_experiment("team")
    assert client.get_experiment(exp).artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    run = client.create_run(exp).info.run_id
    client.log_param(run, "eta", "3.0")
    client.log_metric(run, "validation_accuracy", 0.93, step=1)
    (tmp_path / "note.txt").write_text("hello from the client")
    client.log_artifact(run, str(tmp_path / "note.txt"))
    client.set_terminated(run)
    stored = list((data / "artifacts").rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "hello from the client" and run in str(stored[0])
    again = MlflowClient(f"sqlite:///{data / 'mlflow.db'}").get_run(run)  # in the backend store itself
    assert again.data.params == {"eta": "3.0"} and again.data.metrics["validation_accuracy"] == 0.93


def test_a_batch_through_the_server_keeps_its_artifacts_in_the_destination(server, tmp_path, monkeypatch):
    proc, port, data, _ = server
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    spec = tmp_path / "team.toml"
    spec.write_text('name = "team-sweep"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 2\nbatch_size = 8\n'
                    '[sweep]\neta = [0.5, 3.0]\n')
    url = f"http://127.0.0.1:{port}"
    (entry,) = run_batch([spec], url, log_dir=tmp_path / "logs")
    assert entry.status == "finished", entry.message
    results = list((data / "artifacts").rglob("results.csv"))
    assert len(results) == 1 and entry.parent_run_id in str(results[0])
    assert len(results[0].read_text().splitlines()) == 3  # header and the two configs
    assert f"compare view: {url}/#/compare-runs" in entry.log.read_text()


def test_a_config_is_logged_in_four_requests_with_its_checkpoint_in_the_destination(server, tmp_path, monkeypatch):
    """create the run, one log_batch, one upload per artifact, set it finished: the run is not fetched again."""
    import requests

    from jaxbp.sweeps.tracking import Tracker

    proc, port, data, _ = server
    tracker = Tracker(f"http://127.0.0.1:{port}", "four requests")
    parent = tracker.client.create_run(tracker.experiment_id).info.run_id
    (tmp_path / "checkpoint.msgpack").write_bytes(b"weights")
    record = {"index": 0, "config_hash": "c0", "status": "finished", "message": "", "config": {"eta": 3.0},
              "history": [{"epoch": e, "validation_accuracy": 0.5 + e / 10, "epoch_seconds": 0.1} for e in (1, 2)],
              "grad_agreement_start": 1e-7, "grad_agreement_end": 2e-7}
    sent, real = [], requests.Session.request

    def recorded(self, method, url, *args, **kwargs):
        sent.append((method, url))
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recorded)
    child = tracker.log_child(parent, "c0", record, [tmp_path / "checkpoint.msgpack"])
    paths = [(method, url.split(f":{port}")[1]) for method, url in sent]
    assert paths[:2] == [("POST", "/api/2.0/mlflow/runs/create"), ("POST", "/api/2.0/mlflow/runs/log-batch")]
    assert paths[2][0] == "PUT" and paths[2][1].endswith(f"{child}/artifacts/checkpoint.msgpack")
    assert paths[3:] == [("POST", "/api/2.0/mlflow/runs/update")]
    stored = [path for path in (data / "artifacts").rglob("checkpoint.msgpack") if child in str(path)]
    assert len(stored) == 1 and stored[0].read_bytes() == b"weights"
    run = tracker.client.get_run(child)
    assert run.info.status == "FINISHED" and run.data.metrics["validation_accuracy"] == 0.7


def test_check_of_a_dead_port_is_one_line_and_status_1(capsys):
    port = free_port()
    assert main(["--check", f"http://127.0.0.1:{port}"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"unhealthy: http://127.0.0.1:{port} does not answer /health") and len(out.splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["--host", "0.0.0.0"], "--host 0.0.0.0 listens beyond this machine: pass --allowed-hosts"),
    (["--host", "10.1.2.3", "--port", "5001"], "--host 10.1.2.3 listens beyond this machine"),
    (["--check", "127.0.0.1:5000"], "--check needs an http(s):// URL"),
    (["--backend-store-uri", "http://127.0.0.1:5000"], "--backend-store-uri must be a database"),
    (["--backend-store-uri", "sqlite:////no/such/folder/m.db"], "folder /no/such/folder does not exist"),
])
def test_refusals_are_one_line_and_status_2(args, message, tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "d"), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("serve: error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


def test_a_bad_option_is_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--port", "five"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == "serve: error: argument --port: invalid int value: 'five'\n"


def test_a_non_loopback_host_is_refused_before_anything_is_created(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0"]) == 2
    assert not (tmp_path / "d").exists()
    assert "serve: error:" in capsys.readouterr().err


def test_server_command_passes_the_team_options_through():
    command = server_command("postgresql://u@db/mlflow", "0.0.0.0", 5001, workers=4,
                             artifacts_destination="s3://bucket/mlflow", allowed_hosts="mlflow.example.com",
                             cors_allowed_origins="https://app.example.com")
    text = " ".join(command)
    assert "--backend-store-uri postgresql://u@db/mlflow --host 0.0.0.0 --port 5001 --workers 4" in text
    assert "--artifacts-destination s3://bucket/mlflow" in text and "--allowed-hosts mlflow.example.com" in text
    assert "--cors-allowed-origins https://app.example.com" in text
    assert "--allowed-hosts" not in " ".join(server_command("sqlite:///x.db", "127.0.0.1", 5000))
