"""The MLflow UI for a tracking store: ``mlflow server`` on loopback, started and checked.

What it is for: ``start_server`` launches ``mlflow server`` for a store (one worker, job execution off, so it
starts in seconds), ``wait_healthy`` polls ``/health``, ``latest_sweep_urls`` gives the experiments (in MLflow
3's model-training view), the newest sweep's ranked configs and their compare view.
What it is not: no tracking (see ``tracking``); no team deployment (see services/).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from jaxbp.sweeps.health import health_problem
from jaxbp.sweeps.spec import METRICS
from jaxbp.sweeps.tracking import KIND, Tracker, compare_url, experiment_url, runs_url


def server_command(uri: str, host: str, port: int, *, workers: int = 1, artifacts_destination: str | None = None,
                   allowed_hosts: str | None = None, cors_allowed_origins: str | None = None,
                   app_name: str | None = None) -> list[str]:
    """The ``mlflow server`` command line for store ``uri`` on ``host:port``; the keyword options are passed
    through as ``--workers``, ``--artifacts-destination``, ``--allowed-hosts``, ``--cors-allowed-origins`` and
    ``--app-name`` (e.g. ``basic-auth``)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", str(workers)]
    for flag, value in (("--artifacts-destination", artifacts_destination), ("--allowed-hosts", allowed_hosts),
                        ("--cors-allowed-origins", cors_allowed_origins), ("--app-name", app_name)):
        if value:
            command += [flag, str(value)]
    return command


def start_server(uri: str, *, host: str = "127.0.0.1", port: int = 5000, log=None, cwd=None, env=None,
                 **options) -> subprocess.Popen:
    """Start ``mlflow server`` for ``uri`` (job execution off: ~10 s to start instead of ~30 s). Artifacts
    logged through it go to ``mlartifacts/`` in ``cwd`` unless ``artifacts_destination`` says otherwise;
    ``env`` changes its environment (a value None removes the variable); ``options`` are ``server_command``'s
    keywords."""
    changes = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    env = {k: v for k, v in {**os.environ, **changes}.items() if v is not None}
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


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """From now on SIGTERM stops this process as Ctrl-C does (a server's ``finally`` then stops its children)."""
    signal.signal(signal.SIGTERM, _interrupt)


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
    """[(label, url)] for the UI, all in MLflow 3's model-training view: each experiment (with sweeps: their
    configs ranked by the newest sweep's metric, with η, sizes, the other axes and the metric as columns), then
    the newest sweep's configs alone and their compare view."""
    client = MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments() if e.name != "Default"}
    sweeps = client.search_runs(list(experiments), f"tags.`{KIND}` = 'sweep'",
                                order_by=["attributes.start_time DESC"]) if experiments else []
    newest = {}
    for run in sweeps:
        newest.setdefault(run.info.experiment_id, run)
    out = []
    for exp_id, name in experiments.items():
        if exp_id in newest:
            Tracker(uri, name)  # tags an experiment of an older jaxbp as model training
            view = _view(newest[exp_id])
            label = f"experiment {name}, configs ranked by {view['metric']}"
            out.append((label, runs_url(uri, ui_base, exp_id, **view)))
        else:
            out.append((f"experiment {name}", experiment_url(ui_base, exp_id)))
    if sweeps:
        parent, view = sweeps[0], _view(sweeps[0])
        exp_id, run_id, name = parent.info.experiment_id, parent.info.run_id, parent.info.run_name
        children = [r.info.run_id for r in Tracker(uri, experiments[exp_id]).children(run_id)]
        out += [(f"{name}, ranked by {view['metric']}", runs_url(uri, ui_base, exp_id, **view, parent_run_id=run_id)),
                (f"compare {name}", compare_url(ui_base, exp_id, children))]
    return out


def _view(parent) -> dict:
    """``runs_url``'s metric, maximize and axes for a sweep, from its parent run's params."""
    params = parent.data.params
    metric = params.get("metric", "validation_accuracy")
    axes = [k.removeprefix("axis.") for k in params if k.startswith("axis.")]
    return {"metric": metric, "maximize": METRICS.get(metric, "max") == "max", "axes": axes}
