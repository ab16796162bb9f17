"""Sweeps: every config of a spec trained (configs of one shape together, as one program) and tracked in MLflow.

What it is for: ``run_sweep(spec, tracking_uri)`` expands the spec, groups its configs by ``group_key`` (in
chunks of the size measured cheapest per config on this machine, ``training.chunks``), has an ``Executor``
train each group, and logs one nested child run per config under one parent run (through the
``Recorder``, which spools every finished config first, so that neither a ``kill -9`` nor a tracking server
that goes away loses it). ``resume=True`` logs what the spool holds, keeps the children that were logged
completely, deletes half-logged ones, and trains only what is missing. At the end the parent gets the ranked
``results.csv`` and the sweep's figures.
What it is not: no training maths (see ``training``), no MLflow layout details (see ``tracking``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from jaxbp.sweeps.boundaries import sweep_boundaries
from jaxbp.sweeps.contracts import Executor, Progress, Row
from jaxbp.sweeps.executors.local import LocalExecutor
from jaxbp.sweeps.explain_best import explain_best
from jaxbp.sweeps.health import what_failed
from jaxbp.sweeps.recorder import Recorder
from jaxbp.sweeps.results import ranked_rows, summary_figures, write_csv
from jaxbp.sweeps.search import make_search
from jaxbp.sweeps.search.settings import ADAPTIVE, in_process_only
from jaxbp.sweeps.spec import SweepSpec, check_explain_example, expand, load_spec
from jaxbp.sweeps.spool import Spool
from jaxbp.sweeps.tracking import Tracker, TrackingRefused, check_reachable, compare_url, resolve_uri, runs_url
from jaxbp.training.chunks import chunk_size, split
from jaxbp.training.data import load_dataset
from jaxbp.training.together import group_key


class SweepIncomplete(RuntimeError):
    """The sweep could not finish every config; what finished is kept, and ``--resume`` completes it."""


class TrackingUnavailable(SweepIncomplete):
    """The tracking store stopped answering; finished results are kept in the spool for ``--resume``."""


@dataclass
class SweepResult:
    """How a sweep ended: its runs, ranked rows (best first), and where to look at them in the MLflow UI:
    ``runs_url`` (its configs ranked by the spec's metric, with η, sizes and the metric as columns) and
    ``compare_url`` (MLflow's compare view of its children)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    rows: list[Row]
    compare_url: str
    seconds: dict = field(default_factory=dict)  # wall time of training, logging, plotting, total
    already_finished: bool = False  # resume found the newest sweep of this spec finished: nothing was run
    runs_url: str = ""


def _parent_params(spec: SweepSpec, n_configs: int) -> dict:
    params = {"dataset": spec.dataset, "metric": spec.metric, "mode": spec.mode, "n_configs": n_configs,
              **{f"base.{k}": v for k, v in spec.base.items()},
              **{f"axis.{k}": json.dumps(v) for k, v in spec.sweep.items()},
              **{f"search.{k}": json.dumps(v) for k, v in spec.search.items()}}
    return {k: (v[:500] if isinstance(v, str) else v) for k, v in params.items()}  # MLflow caps param values


def conclude(spec, tracker, parent: str, recorder, data, folder, searched, seconds: dict) -> list[Row]:
    """The sweep's last MLflow calls, once every config is logged: delete the children that are not complete
    (left half-logged by a failed attempt, or created twice by a request that timed out at the client but not at
    the server), rank the others, draw the figures, finish the parent run."""
    start = time.perf_counter()
    tracker.finished_children(parent)
    rows = ranked_rows(tracker, parent, spec)
    artifacts = [write_csv(rows, spec.metric, folder / "results.csv"), *searched,
                 *summary_figures(spec, rows, recorder.histories, tracker, folder),
                 *sweep_boundaries(spec, rows, tracker.client, data, folder),
                 *explain_best(spec, rows, tracker.client, data, folder)]
    seconds["plotting"] = time.perf_counter() - start
    start = time.perf_counter()
    best = rows[0] if rows and rows[0].value is not None else None
    tracker.finish_parent(parent, best_run_id=best and best.run_id, metric=spec.metric,
                          best=best and best.value, artifacts=artifacts)
    seconds["logging"] += time.perf_counter() - start
    return rows


def run_sweep(spec, tracking_uri: str | None = None, *, resume: bool = False, progress: Progress | None = None,
              ui_base: str = "http://127.0.0.1:5000", executor: Executor | None = None) -> SweepResult:
    """Train and track every config of ``spec`` (a SweepSpec or a path to its TOML).

    With ``resume``, the newest sweep of this spec is finished if unfinished, or returned as it is if it
    finished (``already_finished``); without, a new sweep starts. ``executor`` trains the groups
    (``LocalExecutor()`` by default, or ``jaxbp.sweeps.executors.ray.RayExecutor``); ``progress`` is told
    what happens as it happens (the CLI's progress bars)."""
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    if spec.mode in ADAPTIVE and executor is not None and not isinstance(executor, LocalExecutor):
        raise ValueError(in_process_only(spec.mode))
    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    search = make_search(spec, uri) if spec.mode in ADAPTIVE else None
    data = load_dataset(spec.dataset, validation=spec.validation)
    items = expand(spec, (data.n_in, data.n_classes))
    check_explain_example(spec, len(data.test.X))
    began = time.perf_counter()
    tracker, spool = Tracker(uri, spec.name), Spool(spec.digest)
    latest = tracker.latest_parent(spec.digest) if resume else None
    if latest and latest[1]:  # the newest sweep of this spec finished: nothing to resume
        rows = ranked_rows(tracker, latest[0], spec)
        return SweepResult(uri, tracker.experiment_id, latest[0], rows, compare_url(
            ui_base, tracker.experiment_id, [r.run_id for r in rows]), already_finished=True,
            runs_url=runs_url(uri, ui_base, tracker.experiment_id, spec.metric, spec.maximize, spec.sweep, latest[0]))
    parent = latest[0] if latest else None
    done = {i: run.info.run_id for i, run in tracker.finished_children(parent).items()} if parent else {}
    if parent is None:  # a new sweep: whatever an earlier session of this spec kept belongs to another parent
        spool.clear()
        spec_file = spool.root / "spec.toml"
        spec_file.parent.mkdir(parents=True)
        spec_file.write_text(spec.source or json.dumps({"name": spec.name}))
        try:
            parent = tracker.start_parent(f"{spec.name} sweep", spec.digest,
                                          _parent_params(spec, len(items) or spec.search.get("trials")), spec_file)
        except TrackingRefused:  # a user who may read but not write: nothing of this sweep stays behind
            spool.clear()
            raise
    recorder = Recorder(tracker, parent, spool, done, progress)
    for record in spool.pending():  # results of an earlier, interrupted session: logged, not retrained
        recorder.log(record)
    todo = [i for i in range(len(items)) if i not in done and not spool.has(i)]
    shapes: dict[tuple, list[int]] = {}
    for i in todo:
        shapes.setdefault(group_key(items[i][1]), []).append(i)
    # configs of one shape train as one program, in chunks of the size that is cheapest per config here
    groups = [] if search else [chunk for shape in shapes.values()
                                for chunk in split(shape, chunk_size([items[i][1] for i in shape], data))]
    if progress:
        total = len(items) or spec.search.get("trials")
        progress.start(total, len(set(done) | {r["index"] for r in spool.pending()}) if search else total - len(todo))
    start, unfinished, searched = time.perf_counter(), [], []
    if search:
        searched = search.run(spec, items, data, recorder, progress)
    else:
        unfinished = (executor or LocalExecutor()).run(spec, items, groups, data, recorder, progress)
    training = time.perf_counter() - start
    recorder.wait()
    if recorder.failure is not None:  # one more try for what the spool holds
        recorder.retry()
    if recorder.failure is not None:
        raise TrackingUnavailable(
            f"{what_failed(uri, recorder.failure)}; {len(spool.pending())} finished configs are kept in "
            f"{spool.root}: run the same sweep with --resume once it is fixed, to log them without retraining")
    if unfinished:
        raise SweepIncomplete(f"{len(unfinished)} of {len(items)} configs did not finish (their workers were "
                              f"lost); the others are logged under parent run {parent}: run the same sweep with "
                              f"--resume to train only the missing ones")
    seconds = {"training": training, **recorder.seconds}
    try:
        rows = conclude(spec, tracker, parent, recorder, data, spool.root, searched, seconds)
    except MlflowException as err:  # the store went away once every config was logged
        raise TrackingUnavailable(f"{what_failed(uri, err)}; every config is logged under parent run {parent}: "
                                  f"run the same sweep with --resume once it is fixed, to rank them and finish "
                                  f"the sweep") from None
    seconds["total"] = time.perf_counter() - began
    spool.clear()
    return SweepResult(uri, tracker.experiment_id, parent, rows,
                       compare_url(ui_base, tracker.experiment_id, [r.run_id for r in rows]), seconds,
                       runs_url=runs_url(uri, ui_base, tracker.experiment_id, spec.metric, spec.maximize, spec.sweep,
                                         parent))
