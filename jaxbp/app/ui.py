"""The MLflow UI for a tracking store: ``mlflow server`` on loopback, started and checked.

What it is for: ``start_server`` launches ``mlflow server`` for a store (one worker, job execution off, so it
starts in seconds), ``wait_healthy`` polls ``/health``, ``latest_sweep_urls`` gives the experiment and compare
views of the newest sweep. What it is not: no tracking (see ``tracking``); no team deployment (see services/).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from jaxbp.sweeps.tracking import KIND, Tracker, compare_url, health_problem


def server_command(uri: str, host: str, port: int, *, workers: int = 1, artifacts_destination: str | None = None,
                   allowed_hosts: str | None = None, cors_allowed_origins: str | None = None) -> list[str]:
    """The ``mlflow server`` command line for store ``uri`` on ``host:port``; the keyword options are passed
    through as ``--workers``, ``--artifacts-destination``, ``--allowed-hosts``, ``--cors-allowed-origins``."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", str(workers)]
    for flag, value in (("--artifacts-destination", artifacts_destination), ("--allowed-hosts", allowed_hosts),
                        ("--cors-allowed-origins", cors_allowed_origins)):
        if value:
            command += [flag, str(value)]
    return command


def start_server(uri: str, *, host: str = "127.0.0.1", port: int = 5000, log=None, cwd=None,
                 **options) -> subprocess.Popen:
    """Start ``mlflow server`` for ``uri`` (job execution off: ~10 s to start instead of ~30 s). Artifacts
    logged through it go to ``mlartifacts/`` in ``cwd`` unless ``artifacts_destination`` says otherwise;
    ``options`` are ``server_command``'s keywords."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return subprocess.Popen(server_command(uri, host, port, **options), env=env, stdout=log or subprocess.DEVNULL,
                            cwd=cwd, stderr=subprocess.STDOUT if log else subprocess.DEVNULL, start_new_session=True)


def stop_server(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stop the server and its workers (they share its process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    """Poll ``url/health`` until it answers 200; raise with one line if the server died or never answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with status {process.returncode} before answering {url}/health")
        if health_problem(url, timeout=2) is None:
            return
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url}/health within {timeout:.0f} s")


def latest_sweep_urls(uri: str, ui_base: str) -> list[tuple[str, str]]:
    """[(label, url)] for the UI: each experiment, and the compare view of the newest sweep's children."""
    client = MlflowClient(uri)
    out = []
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    for exp in experiments:
        out.append((f"experiment {exp.name}", f"{ui_base}/#/experiments/{exp.experiment_id}"))
    sweeps = client.search_runs([e.experiment_id for e in experiments], f"tags.`{KIND}` = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    if sweeps:
        parent, exp_id = sweeps[0], sweeps[0].info.experiment_id
        children = Tracker(uri, client.get_experiment(exp_id).name).children(parent.info.run_id)
        out.append((f"compare {parent.info.run_name}", compare_url(ui_base, exp_id, [r.info.run_id for r in children])))
    return out
