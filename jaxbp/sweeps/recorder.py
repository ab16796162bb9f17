"""Finishing trained configs: the record of each (checkpoint, gradient agreement), spooled, then logged.

What it is for: ``finish_config`` turns a trained config into its record (JSON-able) and checkpoint;
``Recorder`` does that on one worker thread while the next group trains, puts each record in the spool and
logs it as a child run, and remembers the first tracking failure (then stops trying until ``retry``).
Executors hand it their results through ``submit`` (trained here), ``logged_elsewhere`` (a worker logged it)
and ``keep`` (a worker trained it but could not log it).
What it is not: no training, no ranking or figures (see ``results``), no MLflow layout (see ``tracking``).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jaxbp.core.types import float_dtype
from jaxbp.sweeps.contracts import Progress
from jaxbp.sweeps.spool import Spool
from jaxbp.sweeps.tracking import STOPPED_AT, Tracker
from jaxbp.training.checkpoint import save_checkpoint
from jaxbp.training.diagnostics import grad_agreement
from jaxbp.training.loop import TrainResult, initial_params
from jaxbp.training.metrics import TRAIN_COSTS


def config_hash(config_dict: dict) -> str:
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest()[:16]


def run_name(point: dict) -> str:
    """'eta=3 hidden=30 seed=0' from a config's axis values."""
    def show(v) -> str:
        return "-".join(map(str, v)) if isinstance(v, list) else f"{v:.4g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={show(v)}" for k, v in point.items()) or "base"


def finish_config(index: int, point: dict, config, result: TrainResult, data, folder: Path, *,
                  tags: dict | None = None, files: dict | None = None) -> dict:
    """The record of a trained config (JSON-able), with its checkpoint written to ``folder``: axis values,
    config, status, history, training start and end (wall clock), BP vs jax.grad at the initial and final
    weights on the first training batch, and extra ``tags`` for its run (a config a search stopped also gets
    ``jaxbp.stopped_at_epoch``). ``files`` ({name: JSON-able}) are written beside the checkpoint as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        (folder / name).write_text(json.dumps(content, indent=1))
    tags = dict(tags or {})
    if result.status == "pruned":
        tags[STOPPED_AT] = len(result.history)
    X, Y = data.train.X[: config.batch_size], data.train.Y[: config.batch_size]
    X, Y = X.astype(float_dtype(config.dtype)), Y.astype(float_dtype(config.dtype))
    final = result.history[-1]
    save_checkpoint(folder / "checkpoint.msgpack", result.params, config,
                    metrics={k: v for k, v in final.items() if k in ("epoch", *TRAIN_COSTS, "test_accuracy")})
    return {"index": index, "point": point, "name": run_name(point), "config": config.to_dict(),
            "config_hash": config_hash(config.to_dict()), "status": result.status, "message": result.message,
            "history": result.history, "started_at": result.started_at, "ended_at": result.ended_at, "tags": tags,
            "grad_agreement_start": grad_agreement(initial_params(config), X, Y, config),
            "grad_agreement_end": grad_agreement(result.params, X, Y, config)}


class Recorder:
    """Finishes trained configs on one worker thread (checkpoint, spool, MLflow child run), so that the next
    group trains meanwhile. ``done`` maps config index → child run id of every config logged so far;
    ``histories`` the per-epoch history of every config seen in this session."""

    def __init__(self, tracker: Tracker, parent: str, spool: Spool, done: dict[int, str],
                 progress: Progress | None):
        self.tracker, self.parent, self.spool, self.done, self.progress = tracker, parent, spool, done, progress
        self.pool, self.futures, self.failure, self.histories = ThreadPoolExecutor(1), [], None, {}
        self.statuses: dict[int, str] = {}  # how each config seen in this session ended
        self.seconds = {"logging": 0.0, "finishing": 0.0}

    @property
    def uri(self) -> str:
        """The tracking store the children are logged to."""
        return self.tracker.uri

    def submit(self, index: int, point: dict, config, result: TrainResult, data, *, tags: dict | None = None,
               files: dict | None = None) -> None:
        """A config trained in this process: finish and log it on the worker thread (``tags`` and ``files``:
        see ``finish_config``)."""
        self.futures.append(self.pool.submit(self._finish, index, point, config, result, data, tags, files))

    def _finish(self, index, point, config, result, data, tags, files) -> None:
        start = time.perf_counter()
        record = finish_config(index, point, config, result, data, self.spool.folder(index), tags=tags, files=files)
        self.seconds["finishing"] += time.perf_counter() - start
        self.spool.put(record)
        self.log(record)
        self._advance()

    def log(self, record: dict) -> None:
        """Log one spooled record as a child run (unless already logged); drop it from the spool once logged."""
        index = record["index"]
        self.histories[index], self.statuses[index] = record["history"], record["status"]
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

    def logged_elsewhere(self, index: int, run_id: str, history: list[dict] | None) -> None:
        """A worker of another process logged config ``index`` itself (history None: an earlier attempt did,
        and its curves are read back from MLflow when needed)."""
        self.done[index] = run_id
        if history is not None:
            self.histories[index] = history
        self._advance()

    def keep(self, record: dict, files: dict[str, bytes]) -> None:
        """A worker could not log config ``record['index']``: spool its record and files here, then log it."""
        folder = self.spool.folder(record["index"])
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (folder / name).write_bytes(blob)
        self.spool.put(record)
        self.log(record)
        self._advance()

    def _advance(self) -> None:
        if self.progress:
            self.progress.config_done()

    def wait(self) -> None:
        """Until every submitted config is finished and logged (or kept after a tracking failure)."""
        for future in self.futures:
            future.result()

    def retry(self) -> None:
        """One more try for everything the spool still holds."""
        self.failure = None
        for record in self.spool.pending():
            self.log(record)
