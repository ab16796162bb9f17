"""MLflow tracking of sweeps: where results go, and the layout users read in the MLflow UI.

What it is for: resolving the tracking URI (argument, ``MLFLOW_TRACKING_URI``, else SQLite ``mlflow.db`` in
the working directory) and checking it is reachable, and lets this user in, before any training (a refusal,
HTTP 401 or 403, is one ``TrackingRefused`` line); one parent run per sweep and one nested child run per
config, each logged in a few ``log_batch`` calls; finding an unfinished sweep again.
What it is not: no training, no plots (see ``plots``), no retry policy beyond MLflow's own (see ``run`` and
``recorder``).

Layout: the parent run (tag ``jaxbp.kind=sweep``) holds params dataset, metric, mode, the base config and
the axes, the spec as ``spec.toml``, and at the end the tag ``best_run_id``, the metric ``best_<metric>``,
``results.csv`` and plots. A child run (tag ``mlflow.parentRunId``) holds every TrainConfig field as a param
(``sizes`` written ``784-30-10``), each history key as a metric with ``step=epoch``, the tag ``status``
(finished / diverged / stopped_early / pruned: stopped by a search, with ``jaxbp.stopped_at_epoch``), the
tags a search adds (e.g. PBT's ``jaxbp.lineage``), ``grad_agreement_start``/``_end``, a checkpoint and the
search's files (e.g. ``lineage.json``); the best configs also a learning-curve PNG (see ``results``).
Child runs span their config's training (start and end times).
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from jaxbp.sweeps.database import check_database, display_uri
from jaxbp.sweeps.health import USER, health_problem, login_problem
from jaxbp.training.metrics import describe

# MLflow's HTTP client retries for minutes by default; a sweep wants to know sooner (it keeps results itself).
# MLflow also prints a "View run" link on stdout when a run ends, fetching the run again to do so: one request
# per config for lines that would break the progress bars (the sweep prints its own links at the end).
# Set (unless the user set them) when a Tracker for a server is made, read by MLflow at each request.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}

KIND, SPEC_HASH, INDEX, CONFIG_HASH = "jaxbp.kind", "jaxbp.spec_hash", "jaxbp.config_index", "jaxbp.config_hash"
SWEEP_STATUS, EPOCHS = "jaxbp.sweep_status", "jaxbp.epochs"  # EPOCHS: how many epochs a config ran
NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (Markdown)
STOPPED_AT = "jaxbp.stopped_at_epoch"  # the epoch at which a search stopped (pruned) a config
MAX_METRICS, MAX_PARAMS = 800, 100  # per log_batch call: MLflow takes ≤ 1000 entries, ≤ 100 of them params
# MLflow 3's UI opens an experiment as GenAI (traces) or model training; this tag is what its kind selector
# sets, and a URL's ``workflowType`` decides while the UI's GenAI/Model-training switch is on (3.17).
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
SHARED_VIEW = "mlflow.sharedViewState."  # experiment tag prefix of views opened by ``?viewStateShareKey=``


def resolve_uri(tracking_uri: str | None = None) -> str:
    """The argument, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_reachable(uri: str) -> None:
    """Refuse, in one line, a store that cannot be used: an HTTP server that does not answer /health, a
    SQLite file in a folder that does not exist, a PostgreSQL database that does not take a connection (see
    ``database.check_database``; the password is never shown), or an unknown scheme."""
    if uri.startswith(("http://", "https://")):
        if problem := health_problem(uri):
            raise ValueError(f"tracking server {uri} is unreachable ({problem}); start one with `jaxbp ui` "
                             f"or pass another --tracking-uri")
        if problem := login_problem(uri):  # /health needs no login: one read of the REST API with ours
            raise TrackingRefused(problem)
        return
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).expanduser().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ValueError(f"tracking store {uri}: folder {folder} does not exist or is not writable")
        return
    if uri.startswith("postgresql"):
        check_database(uri)
        return
    if not uri.startswith(("mysql", "mssql", "databricks", "file:")):
        raise ValueError(f"tracking URI {display_uri(uri)!r} is not one MLflow knows; use sqlite:///path.db or http://host:port")


class TrackingRefused(ValueError):
    """The tracking server refused this user (HTTP 401 or 403): one line; nothing was trained."""


@contextmanager
def refusals(uri: str, doing: str):
    """Turn MLflow's error for an HTTP 401 or 403 while ``doing`` something into one ``TrackingRefused`` line."""
    try:
        yield
    except MlflowException as err:
        status = err.get_http_status_code()
        if status not in (401, 403):
            raise
        user = os.environ.get(USER)
        raise TrackingRefused(f"tracking server {uri} does not let {f'user {user!r}' if user else 'this client'} "
                              f"{doing} (HTTP {status}): ask an admin for EDIT on that experiment "
                              "(services/tracking/README.md)") from None


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, ``mlruns/`` beside the database file (not wherever the process happens to run);
    for other stores, None (the server or MLflow decides)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlruns").as_uri()
    return None


def sizes_label(sizes) -> str:
    """(784, 30, 10) → '784-30-10'."""
    return "-".join(str(n) for n in sizes)


def config_params(config_dict: dict) -> dict[str, str]:
    """Every TrainConfig field as an MLflow param value (sizes as 784-30-10, None as 'none')."""
    return {k: sizes_label(v) if k == "sizes" else ("none" if v is None else str(v)) for k, v in config_dict.items()}


def history_metrics(history: list[dict], run_id: str | None = None) -> list[Metric]:
    """One MLflow Metric per (history key, epoch), ``step=epoch``; None values are left out."""
    now = int(time.time() * 1000)
    out = []
    for row in history:
        for key, value in row.items():
            if key != "epoch" and value is not None:
                value = float(value)
                out.append(Metric(key, value if math.isfinite(value) else float("nan"), now, int(row["epoch"])))
    return out


class Tracker:
    """The sweep's view of one MLflow store: its experiment, its parent run, its children."""

    def __init__(self, uri: str, experiment: str):
        self.uri = uri
        if uri.startswith(("http://", "https://")):
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
        self.client, self.experiment = MlflowClient(uri), experiment
        with refusals(uri, f"use experiment {experiment!r}"):
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                experiment, artifact_location=artifact_root(uri), tags={EXPERIMENT_KIND: MODEL_TRAINING})
            if found and EXPERIMENT_KIND not in found.tags:  # made by an older jaxbp or an admin: model training
                try:
                    self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
                except MlflowException as err:  # a reader may not tag it (a writer will): it learns why below
                    if err.get_http_status_code() != 403:
                        raise

    def log(self, run_id: str, *, params: dict | None = None, metrics=(), tags: dict | None = None) -> None:
        """Everything in as few ``log_batch`` calls as MLflow's limits allow."""
        params = [Param(k, str(v)) for k, v in (params or {}).items()]
        tags = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        metrics = list(metrics)
        calls = max(math.ceil(len(params) / MAX_PARAMS), math.ceil(len(metrics) / MAX_METRICS), 1)
        for i in range(calls):
            self.client.log_batch(run_id, metrics=metrics[i * MAX_METRICS:(i + 1) * MAX_METRICS],
                                  params=params[i * MAX_PARAMS:(i + 1) * MAX_PARAMS], tags=tags if i == 0 else [])

    def artifacts(self, run) -> ArtifactRepository:
        """The artifact store of a run just created: from its own artifact URI, without asking the server for
        the run again (``MlflowClient.log_artifact`` would: one request less per config)."""
        return get_artifact_repository(run.info.artifact_uri, tracking_uri=self.uri)

    def start_parent(self, name: str, digest: str, params: dict, spec_path: Path) -> str:
        with refusals(self.uri, f"create runs in experiment {self.experiment!r}"):
            run = self.client.create_run(self.experiment_id, run_name=name,
                                         tags={KIND: "sweep", SPEC_HASH: digest, SWEEP_STATUS: "running"})
        self.log(run.info.run_id, params=params)
        self.artifacts(run).log_artifact(str(spec_path))
        return run.info.run_id

    def latest_parent(self, digest: str) -> tuple[str, bool] | None:
        """(run id, finished?) of the newest sweep run of this spec hash, if any."""
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{SPEC_HASH}` = '{digest}' and tags.`{KIND}` = 'sweep'",
            order_by=["attributes.start_time DESC"], max_results=1)
        return (runs[0].info.run_id, runs[0].data.tags.get(SWEEP_STATUS) == "finished") if runs else None

    def children(self, parent_id: str) -> list:
        """Every child run of ``parent_id`` (all pages)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                           max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def finished_children(self, parent_id: str) -> dict[int, object]:
        """{config index: run} of the children that were logged completely; the others are deleted, so
        that a resumed sweep ends with each config exactly once."""
        done = {}
        for run in self.children(parent_id):
            index = run.data.tags.get(INDEX)
            if run.info.status == "FINISHED" and index is not None and int(index) not in done:
                done[int(index)] = run
            else:
                self.client.delete_run(run.info.run_id)
        return done

    def claim_child(self, parent_id: str, index: int) -> str | None:
        """The run id of a complete child for config ``index``, if one exists; half-logged ones are deleted.
        (A retried worker uses this so that no config is logged twice.)"""
        found = None
        for run in self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}' "
                                                                 f"and tags.`{INDEX}` = '{index}'"):
            if run.info.status == "FINISHED" and found is None:
                found = run.info.run_id
            else:
                self.client.delete_run(run.info.run_id)
        return found

    def log_child(self, parent_id: str, name: str, record: dict, artifacts: list[Path]) -> str:
        """One config's child run: params, per-epoch metrics, tags, artifacts; FINISHED only once complete.
        The run starts and ends when the config's training did (``started_at``/``ended_at``, Unix seconds; when
        absent: ending now, starting the history's epoch seconds earlier)."""
        ended = record.get("ended_at") or time.time()
        started = record.get("started_at") or ended - sum(row.get("epoch_seconds") or 0 for row in record["history"])
        note = "What each metric is:\n\n" + describe(record["history"][0] if record["history"] else {})
        run = self.client.create_run(self.experiment_id, start_time=int(started * 1000), run_name=name, tags={
            "mlflow.parentRunId": parent_id, KIND: "config", INDEX: str(record["index"]),
            CONFIG_HASH: record["config_hash"], "status": record["status"], "jaxbp.message": record["message"],
            EPOCHS: str(len(record["history"])), NOTE: note,
            **{k: str(v) for k, v in record.get("tags", {}).items()}})
        run_id = run.info.run_id
        extra = [Metric(k, float(v), int(time.time() * 1000), step) for k, v, step in (
            ("grad_agreement", record["grad_agreement_start"], 0),
            ("grad_agreement", record["grad_agreement_end"], len(record["history"])),
            ("grad_agreement_start", record["grad_agreement_start"], 0),
            ("grad_agreement_end", record["grad_agreement_end"], 0))]
        self.log(run_id, params=config_params(record["config"]), metrics=history_metrics(record["history"]) + extra)
        repository = self.artifacts(run)
        for path in artifacts:
            repository.log_artifact(str(path))
        self.client.set_terminated(run_id, "FINISHED", end_time=int(ended * 1000))
        return run_id

    def finish_parent(self, parent_id: str, *, best_run_id: str | None, metric: str, best: float | None,
                      artifacts: list[Path]) -> None:
        for path in artifacts:
            self.client.log_artifact(parent_id, str(path))
        metrics = [] if best is None else [Metric(f"best_{metric}", float(best), int(time.time() * 1000), 0)]
        self.log(parent_id, metrics=metrics, tags={SWEEP_STATUS: "finished", "best_run_id": best_run_id or "none"})
        self.client.set_terminated(parent_id, "FINISHED")



def compare_url(ui_base: str, experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's compare view of these runs (params and metrics side by side; its plots start on the
    first metric, whatever the spec's is: no URL parameter chooses it)."""
    runs = ",".join(f'"{r}"' for r in run_ids)
    return f"{ui_base.rstrip('/')}/#/compare-runs?runs=[{runs}]&experiments=[\"{experiment_id}\"]"


def experiment_url(ui_base: str, experiment_id: str) -> str:
    """The experiment's runs table in MLflow 3's model-training view (without ``workflowType`` a fresh
    browser opens the GenAI overview: traces, latency, token usage)."""
    return f"{ui_base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def runs_url(uri: str, ui_base: str, experiment_id: str, metric: str, maximize: bool = True, axes=(),
             parent_run_id: str | None = None) -> str:
    """The runs table of the configs of one sweep (``parent_run_id``) or of every sweep of the experiment, best
    first by ``metric``, with columns for η, sizes, the other ``axes`` and ``metric``. It is saved in store
    ``uri`` as a shared view of the experiment (the tag MLflow's own Share writes; no URL parameter sets
    columns), and the URL returned opens it without a click."""
    key, order = f"jaxbp-{parent_run_id or 'configs'}", f"metrics.`{metric}`"
    params = dict.fromkeys(a for a in ("eta", "sizes", *axes) if a != "hidden")  # a hidden axis is in sizes
    view = {"searchFilter": f"tags.`mlflow.parentRunId` = '{parent_run_id}'" if parent_run_id else
            f"tags.`{KIND}` = 'config'", "orderByKey": order, "orderByAsc": not maximize,
            "selectedColumns": [*(f"params.`{p}`" for p in params), order]}
    MlflowClient(uri).set_experiment_tag(experiment_id, SHARED_VIEW + key, json.dumps(view))
    return f"{experiment_url(ui_base, experiment_id)}&viewStateShareKey={key}"


def metric_history(client: MlflowClient, run_id: str, keys=None) -> list[dict]:
    """A run's per-epoch metrics ``keys`` (None: all of them) read back as history rows {epoch, key: value},
    for figures of runs logged in another session or process."""
    if keys is None:
        keys = sorted(k for k in client.get_run(run_id).data.metrics if not k.startswith("grad_agreement"))
    rows: dict[int, dict] = {}
    for key in keys:
        for m in client.get_metric_history(run_id, key):
            rows.setdefault(m.step, {"epoch": m.step})[key] = m.value
    return [{k: row.get(k) for k in ("epoch", *keys)} for _, row in sorted(rows.items())]
