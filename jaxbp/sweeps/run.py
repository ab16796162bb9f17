"""Sweeps: every config of a spec trained (configs of one shape together, as one program) and tracked in MLflow.

What it is for: ``run_sweep(spec, tracking_uri)`` expands the spec, groups its configs by ``group_key``,
trains each group with ``train_together``, and logs one nested child run per config under one parent run.
Each finished config is first written to a local spool (``.jaxbp/spool/<spec hash>/<index>/``: record,
checkpoint, learning-curve PNG) and removed from it once logged, so neither a ``kill -9`` nor a tracking
server that goes away loses a finished result: ``resume=True`` logs what the spool holds, keeps the children
that were logged completely, deletes half-logged ones, and trains only what is missing.
What it is not: no training maths (see ``train``), no MLflow layout details (see ``tracking``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from jaxbp.core.network import init_params
from jaxbp.core.types import float_dtype
from jaxbp.sweeps import plots
from jaxbp.sweeps.spec import SweepSpec, expand, load_spec
from jaxbp.sweeps.tracking import Tracker, check_reachable, compare_url, resolve_uri
from jaxbp.training.checkpoint import save_checkpoint
from jaxbp.training.data import load_dataset
from jaxbp.training.diagnostics import grad_agreement
from jaxbp.training.loop import group_key, train_together


class SweepIncomplete(RuntimeError):
    """The sweep could not finish every config; what finished is kept, and ``--resume`` completes it."""


class TrackingUnavailable(SweepIncomplete):
    """The tracking store stopped answering; finished results are kept in the spool for ``--resume``."""


@dataclass
class SweepResult:
    """How a sweep ended: its runs, ranked rows (best first), and where to look at them."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    rows: list[dict]
    compare_url: str
    seconds: dict = field(default_factory=dict)  # wall time of training, logging, plotting, total
    already_finished: bool = False  # resume found the newest sweep of this spec finished: nothing was run


def config_hash(config_dict: dict) -> str:
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest()[:16]


def run_name(point: dict) -> str:
    """'eta=3 hidden=30 seed=0' from a config's axis values."""
    show = lambda v: "-".join(map(str, v)) if isinstance(v, list) else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    return " ".join(f"{k}={show(v)}" for k, v in point.items()) or "base"


class Spool:
    """Finished configs not yet logged, one folder each under ``root/<spec hash>/<index>/``."""

    def __init__(self, digest: str):
        self.root = Path(os.environ.get("JAXBP_SPOOL", ".jaxbp/spool")) / digest

    def folder(self, index: int) -> Path:
        return self.root / str(index)

    def put(self, record: dict) -> None:
        """Write the record last and atomically: a folder without ``record.json`` is incomplete."""
        tmp = self.folder(record["index"]) / "record.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, tmp.with_suffix(""))

    def pending(self) -> list[dict]:
        files = sorted(self.root.glob("*/record.json"), key=lambda p: int(p.parent.name))
        return [json.loads(p.read_text()) for p in files]

    def artifacts(self, index: int) -> list[Path]:
        return sorted(p for p in self.folder(index).iterdir() if p.suffix in (".msgpack", ".png"))

    def remove(self, index: int) -> None:
        shutil.rmtree(self.folder(index), ignore_errors=True)


def finish_config(index: int, point: dict, config, result, data, folder: Path) -> dict:
    """The record of a trained config (JSON-able), with its checkpoint and learning curves in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    X, Y = data.train.X[: config.batch_size], data.train.Y[: config.batch_size]
    X, Y = X.astype(float_dtype(config.dtype)), Y.astype(float_dtype(config.dtype))
    start = init_params(jax.random.split(jax.random.key(config.seed))[0], config.sizes, config.init,
                        float_dtype(config.dtype))
    final = result.history[-1]
    save_checkpoint(folder / "checkpoint.msgpack", result.params, config,
                    metrics={k: v for k, v in final.items() if k in ("epoch", "train_cost", "test_accuracy")})
    plots.config_curves(result.history, folder / "learning_curves.png", title=run_name(point))
    return {"index": index, "point": point, "name": run_name(point), "config": config.to_dict(),
            "config_hash": config_hash(config.to_dict()), "status": result.status, "message": result.message,
            "history": result.history, "grad_agreement_start": grad_agreement(start, X, Y, config),
            "grad_agreement_end": grad_agreement(result.params, X, Y, config)}


def _parent_params(spec: SweepSpec, n_configs: int) -> dict:
    params = {"dataset": spec.dataset, "metric": spec.metric, "mode": spec.mode, "n_configs": n_configs,
              **{f"base.{k}": v for k, v in spec.base.items()},
              **{f"axis.{k}": json.dumps(v) for k, v in spec.sweep.items()}}
    return {k: (v[:500] if isinstance(v, str) else v) for k, v in params.items()}  # MLflow caps param values


class _Recorder:
    """Finishes trained configs on one worker thread (checkpoint, plot, spool, MLflow child run), so that the
    next group trains meanwhile; remembers the first tracking failure and stops logging until ``retry``."""

    def __init__(self, tracker: Tracker, parent: str, spool: Spool, done: dict, progress):
        self.tracker, self.parent, self.spool, self.done, self.progress = tracker, parent, spool, done, progress
        self.pool, self.futures, self.failure, self.histories = ThreadPoolExecutor(1), [], None, {}
        self.seconds = {"logging": 0.0, "plotting": 0.0}

    def submit(self, index: int, point: dict, config, result, data) -> None:
        self.futures.append(self.pool.submit(self._finish, index, point, config, result, data))

    def _finish(self, index, point, config, result, data) -> None:
        start = time.perf_counter()
        record = finish_config(index, point, config, result, data, self.spool.folder(index))
        self.seconds["plotting"] += time.perf_counter() - start
        self.spool.put(record)
        self.log(record)
        if self.progress:
            self.progress.config_done()

    def log(self, record: dict) -> None:
        """Log one spooled record as a child run (unless already logged); drop it from the spool once logged."""
        index = record["index"]
        self.histories[index] = record["history"]
        if self.failure is None and index not in self.done:
            start = time.perf_counter()
            try:
                self.done[index] = self.tracker.log_child(self.parent, record["name"], record,
                                                          self.spool.artifacts(index))
            except Exception as err:  # the store went away: keep the spool, stop trying until retry()
                self.failure = err
            self.seconds["logging"] += time.perf_counter() - start
        if index in self.done:
            self.spool.remove(index)

    def logged_elsewhere(self, index: int, run_id: str, history: list[dict]) -> None:
        """A worker of another process logged config ``index`` itself."""
        self.done[index] = run_id
        if history is not None:  # None: logged by an earlier attempt; its curves are read back from MLflow
            self.histories[index] = history
        if self.progress:
            self.progress.config_done()

    def keep(self, record: dict, files: dict[str, bytes]) -> None:
        """A worker could not log config ``record['index']``: spool its record and files here, then log it."""
        folder = self.spool.folder(record["index"])
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (folder / name).write_bytes(blob)
        self.spool.put(record)
        self.log(record)
        if self.progress:
            self.progress.config_done()

    def wait(self) -> None:
        for future in self.futures:
            future.result()
        self.pool.shutdown()

    def retry(self) -> None:
        """One more try for everything the spool still holds."""
        self.failure = None
        for record in self.spool.pending():
            self.log(record)


class LocalExecutor:
    """Every group in this process, one after another (each one compiled program); configs are finished
    and logged on the recorder's thread while the next group trains."""

    def run(self, spec, items, groups, data, recorder, progress) -> list[int]:
        """Train ``groups`` (lists of config indices); returns the indices left unfinished (none here)."""
        for group in groups:
            if progress:
                progress.group(len(group), items[group[0]][1].epochs)
            results = train_together([items[i][1] for i in group], data, callbacks=[progress.epoch] if progress else [])
            for i, result in zip(group, results):
                recorder.submit(i, *items[i], result, data)
        return []


def run_sweep(spec, tracking_uri: str | None = None, *, resume: bool = False, progress=None,
              ui_base: str = "http://127.0.0.1:5000", executor=None) -> SweepResult:
    """Train and track every config of ``spec`` (a SweepSpec or a path to its TOML).

    With ``resume``, the newest sweep of this spec is finished if unfinished, or returned as it is if it
    finished (``already_finished``); without, a new sweep starts. ``executor`` trains the groups:
    ``LocalExecutor()`` by default, or ``jaxbp.sweeps.executors.ray.RayExecutor``. ``progress`` is an optional
    object with ``start(n_configs, done)``, ``group(configs, epochs)``, ``epoch(index, metrics)`` and
    ``config_done()`` (the CLI's progress bars)."""
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    data = load_dataset(spec.dataset, validation=spec.validation)
    items = expand(spec, (data.n_in, data.n_classes))
    began = time.perf_counter()
    tracker, spool = Tracker(uri, spec.name), Spool(spec.digest)
    latest = tracker.latest_parent(spec.digest) if resume else None
    if latest and latest[1]:  # the newest sweep of this spec finished: nothing to resume
        rows = _ranked_rows(tracker, latest[0], spec)
        return SweepResult(uri, tracker.experiment_id, latest[0], rows, compare_url(
            ui_base, tracker.experiment_id, [r["run_id"] for r in rows]), already_finished=True)
    parent = latest[0] if latest else None
    done = {i: run.info.run_id for i, run in tracker.finished_children(parent).items()} if parent else {}
    if parent is None:  # a new sweep: whatever an earlier session of this spec kept belongs to another parent
        shutil.rmtree(spool.root, ignore_errors=True)
        spec_file = spool.root / "spec.toml"
        spec_file.parent.mkdir(parents=True)
        spec_file.write_text(spec.source or json.dumps({"name": spec.name}))
        parent = tracker.start_parent(f"{spec.name} sweep", spec.digest, _parent_params(spec, len(items)), spec_file)
    recorder = _Recorder(tracker, parent, spool, done, progress)
    for record in spool.pending():  # results of an earlier, interrupted session: logged, not retrained
        recorder.log(record)
    todo = [i for i in range(len(items)) if i not in done and not (spool.folder(i) / "record.json").exists()]
    groups: dict[tuple, list[int]] = {}
    for i in todo:
        groups.setdefault(group_key(items[i][1]), []).append(i)
    if progress:
        progress.start(len(items), len(items) - len(todo))
    start = time.perf_counter()
    unfinished = (executor or LocalExecutor()).run(spec, items, list(groups.values()), data, recorder, progress)
    training = time.perf_counter() - start
    recorder.wait()
    if recorder.failure is not None:
        recorder.retry()
    if recorder.failure is not None:
        failure = recorder.failure
        raise TrackingUnavailable(
            f"tracking store {uri} stopped answering ({type(failure).__name__}: {str(failure)[:200]}); "
            f"{len(spool.pending())} finished configs are kept in {spool.root}: run the same sweep with "
            f"--resume when it is back to log them without retraining")
    if unfinished:
        raise SweepIncomplete(f"{len(unfinished)} of {len(items)} configs did not finish (their workers were "
                              f"lost); the others are logged under parent run {parent}: run the same sweep with "
                              f"--resume to train only the missing ones")
    seconds = {"training": training, **recorder.seconds}
    start = time.perf_counter()
    rows = _ranked_rows(tracker, parent, spec)
    artifacts = _summary_artifacts(spec, rows, recorder.histories, tracker, spool.root)
    seconds["plotting"] += time.perf_counter() - start
    start = time.perf_counter()
    best = rows[0] if rows and rows[0]["value"] is not None else None
    tracker.finish_parent(parent, best_run_id=best and best["run_id"], metric=spec.metric,
                          best=best and best["value"], artifacts=artifacts)
    seconds["logging"] += time.perf_counter() - start
    seconds["total"] = time.perf_counter() - began
    shutil.rmtree(spool.root, ignore_errors=True)
    return SweepResult(uri, tracker.experiment_id, parent, rows,
                       compare_url(ui_base, tracker.experiment_id, [r["run_id"] for r in rows]), seconds)


def _ranked_rows(tracker: Tracker, parent: str, spec: SweepSpec) -> list[dict]:
    """One row per child run, best first by ``spec.metric`` (final epoch); diverged/None last."""
    rows = []
    for run in tracker.children(parent):
        value = run.data.metrics.get(spec.metric)
        value = None if value is None or not np.isfinite(value) else value
        rows.append({"run_id": run.info.run_id, "name": run.info.run_name, "status": run.data.tags.get("status"),
                     "index": int(run.data.tags.get("jaxbp.config_index", -1)), "value": value,
                     "eta": float(run.data.params["eta"]), "sizes": run.data.params["sizes"],
                     "params": dict(run.data.params)})
    sign = -1 if spec.maximize else 1
    return sorted(rows, key=lambda r: (r["value"] is None, sign * (r["value"] or 0), r["index"]))


def _summary_artifacts(spec, rows, histories, tracker, folder: Path) -> list[Path]:
    """results.csv and the three sweep plots, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "results.csv"
    keys = sorted({k for r in rows for k in r["params"]})
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "run_id", "name", "status", spec.metric, *keys])
        for rank, r in enumerate(rows, start=1):
            writer.writerow([rank, r["run_id"], r["name"], r["status"], r["value"],
                             *(r["params"].get(k) for k in keys)])
    for r in rows:  # children of an earlier session: their curves come back from MLflow
        if r["index"] not in histories:
            histories[r["index"]] = tracker.history(r["run_id"], ("train_cost", "validation_accuracy", "test_accuracy"))
    by_name = {r["name"]: histories[r["index"]] for r in sorted(rows, key=lambda r: r["index"])}
    plot_rows = [{"eta": r["eta"], "sizes": r["sizes"], spec.metric: r["value"]} for r in rows]
    return [csv_path,
            plots.metric_vs_eta(plot_rows, spec.metric, folder / f"{spec.metric}_vs_eta.png"),
            plots.metric_heatmap(plot_rows, spec.metric, folder / f"{spec.metric}_heatmap.png"),
            plots.learning_curves(by_name, folder / "learning_curves.png", title=f"{spec.name}: every config")]
