"""Batch experiment jobs: a queue of sweep specs run one after another, unattended (``jaxbp batch``).

What it is for: ``run_batch`` checks every spec first (``load_spec``), then runs each valid one with
``jaxbp.sweeps.run.run_sweep``, writing what the sweep would print (progress as plain lines, the ranked table,
timings, or the error and its traceback) to ``<log_dir>/<spec stem>.log``, and returns one ``BatchEntry`` per
spec; ``run_batch_command`` adds the summary table and the exit status.
What it is not: no training or tracking logic (see ``jaxbp.sweeps.run``), no retries; specs run one after
another in this process (a sweep's groups go to Ray workers with ``jaxbp sweep SPEC --executor ray``).
"""

from __future__ import annotations

import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Callable, NamedTuple

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jaxbp.app.console import format_metrics, quiet_libraries, sweep_table, sweep_timing
from jaxbp.sweeps.run import SweepIncomplete, run_sweep
from jaxbp.sweeps.spec import load_spec, points
from jaxbp.sweeps.tracking import check_reachable, resolve_uri

STATUSES = ("finished", "failed", "invalid", "skipped")


class BatchEntry(NamedTuple):
    """How one spec of a batch ended. ``status``: finished, failed (the sweep raised), invalid (the spec was
    refused before anything ran) or skipped (an earlier spec failed and the batch stopped)."""

    spec: str
    status: str
    metric: str | None = None
    best: float | None = None
    parent_run_id: str | None = None
    log: Path | None = None
    seconds: float = 0.0
    message: str = ""


class LogProgress:
    """``run_sweep``'s progress interface as plain, timestamped lines (a log file has no live bars)."""

    def __init__(self, write: Callable[[str], None]):
        self.write, self.total, self.done, self.epochs, self.shown = write, 0, 0, 0, 0

    def start(self, n_configs: int, done: int) -> None:
        self.total, self.done = n_configs, done
        self.write(f"{n_configs} configs" + (f", {done} already done" if done else ""))

    def group(self, n: int, epochs: int) -> None:
        self.epochs, self.shown = epochs, 0
        self.write(f"training {n} configs together, {epochs} epochs")

    def epoch(self, index: int, metrics: dict) -> None:
        e = metrics["epoch"]  # about ten lines per group: the first, every tenth and the last epoch
        if e > self.shown and (e in (1, self.epochs) or e % max(1, self.epochs // 10) == 0):
            self.shown = e
            self.write(f"  epoch {e}/{self.epochs} (config {index} of the group): {format_metrics(metrics)}")

    def config_done(self) -> None:
        self.done += 1
        self.write(f"  configs done: {self.done}/{self.total}")


def _one_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    return text if isinstance(err, (ValueError, TypeError, OSError, SweepIncomplete)) else \
        f"{type(err).__name__}: {text}"


def _log_paths(specs: list[Path], log_dir: Path) -> list[Path]:
    """<log_dir>/<stem>.log, with -2, -3, … where two specs share a stem."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        seen[spec.stem] = seen.get(spec.stem, 0) + 1
        out.append(log_dir / (spec.stem + (f"-{seen[spec.stem]}" if seen[spec.stem] > 1 else "") + ".log"))
    return out


def _run_one(spec, uri: str, resume: bool, log: Path) -> tuple[str, object, str]:
    """Run one checked spec, writing its log; (status, SweepResult or None, message)."""
    with log.open("a") as f:
        console = Console(file=f, width=140, no_color=True, highlight=False, soft_wrap=True)
        lock = threading.Lock()

        def write(line: str) -> None:
            with lock:
                console.print(f"{datetime.now():%H:%M:%S} {line}", markup=False)
                f.flush()

        write(f"sweep {spec.name!r}: {len(points(spec))} configs on {spec.dataset} into {uri}"
              + (" (resume)" if resume else ""))
        try:
            ui = uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"  # `jaxbp ui`
            result = run_sweep(spec, uri, resume=resume, progress=LogProgress(write), ui_base=ui.rstrip("/"))
        except Exception as err:  # SweepIncomplete, an unreachable store, a dataset it cannot read, a bug
            write(f"failed: {_one_line(err)}")
            if not isinstance(err, (ValueError, TypeError, OSError, SweepIncomplete)):
                console.print(traceback.format_exc(), markup=False)
            return "failed", None, _one_line(err)
        console.print(sweep_table(result, spec.metric))
        write(sweep_timing(result))
        write(f"parent run {result.parent_run_id} in {result.tracking_uri}")
        write(f"configs ranked in the MLflow UI: {result.runs_url}")
        write(f"compare view: {result.compare_url}")
        return "finished", result, ""


def run_batch(specs, tracking_uri: str | None = None, *, keep_going: bool = False, resume: bool = False,
              log_dir: Path = Path("batch-logs"), on_start=None, on_done=None) -> list[BatchEntry]:
    """Run every spec in order and return how each ended.

    Every spec is checked before anything trains: an invalid one is ``invalid`` (its one-line error is in its
    log). Without ``keep_going`` the batch stops at the first invalid or failed spec and every spec not yet
    run is ``skipped`` (so one broken spec means nothing trains); with it, the others still run. ``resume``
    is passed to each ``run_sweep``: it finishes an unfinished sweep of that spec, while a spec whose last
    sweep finished is reported ``finished`` with that sweep's results, and nothing is trained.
    ``on_start(i, spec, log)`` and ``on_done(i, entry)`` let a caller report as it goes. Raises ValueError
    (one line) if the tracking store is unreachable at the start."""
    paths = [Path(s) for s in specs]
    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    logs, checked, entries = _log_paths(paths, log_dir), [], []
    for path, log in zip(paths, logs):
        try:
            checked.append(load_spec(path))
        except Exception as err:
            checked.append(_one_line(err))
            log.write_text(f"{datetime.now():%H:%M:%S} invalid spec {path}: {checked[-1]}\n")
    invalid = [p for p, c in zip(paths, checked) if isinstance(c, str)]
    stop = f"{invalid[0]} is invalid" if invalid and not keep_going else ""  # why the rest is not run
    for i, (path, log, spec) in enumerate(zip(paths, logs, checked)):
        if isinstance(spec, str):
            entry = BatchEntry(str(path), "invalid", log=log, message=spec)
        elif stop:
            entry = BatchEntry(str(path), "skipped", spec.metric, message=f"not run: {stop} (--keep-going runs "
                               "the others)")
        else:
            if on_start:
                on_start(i, path, log)
            began = time.perf_counter()
            try:
                status, result, message = _run_one(spec, uri, resume, log)
            except KeyboardInterrupt:
                status, result, message, stop = "failed", None, "interrupted", "the batch was interrupted"
            best = result.rows[0].value if result is not None and result.rows else None
            entry = BatchEntry(str(path), status, spec.metric, best, result and result.parent_run_id, log,
                               time.perf_counter() - began, message)
            if status != "finished" and not keep_going:
                stop = stop or f"{path} failed"
        entries.append(entry)
        if on_done:
            on_done(i, entry)
    return entries


def summary_table(entries: list[BatchEntry]) -> Table:
    """One row per spec: status, metric, best value, parent run and log."""
    table = Table(title=f"batch of {len(entries)} specs")
    styles = {"finished": "green", "failed": "red", "invalid": "red", "skipped": "yellow"}
    for name in ("spec", "status", "metric", "best", "parent run", "seconds", "log"):
        short = name in ("status", "best", "seconds")  # never cut; long paths and ids fold onto more lines instead
        table.add_column(name, justify="right" if name in ("best", "seconds") else "left", no_wrap=short,
                         min_width=8 if short else None, overflow="ellipsis" if short else "fold")
    for e in entries:
        table.add_row(escape(e.spec), f"[{styles[e.status]}]{e.status}[/]", e.metric or "",
                      "" if e.best is None else f"{e.best:.4f}", e.parent_run_id or "",
                      f"{e.seconds:.1f}" if e.status in ("finished", "failed") else "", escape(str(e.log or "")))
    return table


def run_batch_command(specs, tracking_uri=None, *, keep_going=False, resume=False,
                      log_dir: Path = Path("batch-logs")) -> int:
    """``jaxbp batch``: run the batch with a line per spec, then the summary; 0 if every spec finished, else 1."""
    quiet_libraries()
    console = Console(highlight=False, soft_wrap=True)  # one line per spec, whatever the width
    if not console.is_terminal:
        console.width = max(console.width, 200)  # a log or CI: keep run ids and paths whole
    n = len(specs)
    entries = run_batch(
        specs, tracking_uri, keep_going=keep_going, resume=resume, log_dir=log_dir,
        on_start=lambda i, spec, log: console.print(f"[{i + 1}/{n}] {spec}: running, log {log}", markup=False),
        on_done=lambda i, e: console.print(f"[{i + 1}/{n}] {e.spec}: {e.status}" + (f" ({e.seconds:.1f} s)" if
                                           e.seconds else "") + (f" — {e.message}" if e.message else ""),
                                           markup=False))
    console.print(summary_table(entries))
    bad = [e for e in entries if e.status != "finished"]
    console.print(f"{n - len(bad)} of {n} specs finished" + (f"; {len(bad)} not: exit status 1" if bad else ""))
    return 1 if bad else 0
