"""The Ray executor: a sweep's groups (one compiled program each) trained on Ray workers.

What it is for: ``jaxbp sweep SPEC --executor ray [--address ADDR]``. Each group becomes one Ray task; the
worker loads the dataset, trains its group with ``train_together``, and logs its children under the sweep's
one parent run in the shared tracking store. A task whose worker dies is retried by Ray (``max_retries``);
a retried task skips the children already logged and deletes half-logged ones, so no config is logged
twice. What a worker could not log comes back to the driver, which keeps it in its spool. Configs whose
task failed for good are reported unfinished, and ``--resume`` trains only those.
What it is not: no cluster management (start one with ``ray start``, submit with ``ray job submit``).
"""

from __future__ import annotations

import logging
import socket
import tempfile
from pathlib import Path

RETRIES = 2  # Ray reruns a task up to this many times when its worker dies


def require_ray():
    """Import ray, or say in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'jaxbp[ray]' (or pip install ray)") from None
    return ray


def train_group(spec, indices: list[int], uri: str, parent: str) -> list[dict]:
    """On a worker: train configs ``indices`` of ``spec`` together and log each as a child of ``parent``.

    Returns, per config, {"index", "run_id", "history"} when logged, else {"index", "record", "files"}."""
    from jaxbp.sweeps.recorder import finish_config
    from jaxbp.sweeps.spec import expand
    from jaxbp.sweeps.spool import artifacts
    from jaxbp.sweeps.tracking import Tracker
    from jaxbp.training.data import load_dataset
    from jaxbp.training.together import train_together

    data = load_dataset(spec.dataset, validation=spec.validation)
    items = expand(spec, (data.n_in, data.n_classes))
    tracker = Tracker(uri, spec.name)
    todo = [i for i in indices if tracker.claim_child(parent, i) is None]
    results = train_together([items[i][1] for i in todo], data) if todo else []
    outcomes = [{"index": i, "run_id": tracker.claim_child(parent, i), "history": None}
                for i in indices if i not in todo]
    with tempfile.TemporaryDirectory() as tmp:
        for i, result in zip(todo, results):
            folder = Path(tmp) / str(i)
            record = finish_config(i, *items[i], result, data, folder)
            files = artifacts(folder)
            try:
                run_id = tracker.log_child(parent, record["name"], record, files)
                outcomes.append({"index": i, "run_id": run_id, "history": record["history"]})
            except Exception:  # the store is unreachable from here: hand the result to the driver
                outcomes.append({"index": i, "record": record, "files": {p.name: p.read_bytes() for p in files}})
    return outcomes


def check_address(address: str) -> None:
    """Refuse in seconds a host:port (or ray://host:port) nothing listens on; Ray itself retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
    except OSError as err:
        raise ValueError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}; "
                         f"start one with `ray start --head` or leave out --address for a local Ray") from None


class RayExecutor:
    """Sends each group to a Ray worker; ``address`` None starts a local Ray (``ray.init``)."""

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        self.ray = require_ray()
        if address:
            check_address(address)
        try:
            if not self.ray.is_initialized():
                self.ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                              logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ValueError(f"cannot reach the Ray cluster at {address or 'a new local Ray'}: "
                             f"{str(err).splitlines()[0]}") from None

    def run(self, spec, items, groups, data, recorder, progress) -> list[int]:
        """Train every group on Ray; returns the config indices that did not finish."""
        task = self.ray.remote(max_retries=RETRIES)(train_group)
        pending = {task.remote(spec, group, recorder.uri, recorder.parent): group for group in groups}
        unfinished = []
        while pending:
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready[0])
            try:
                outcomes = self.ray.get(ready[0])
            except self.ray.exceptions.RayTaskError as err:  # the task itself raised: a retry would too
                cause = err.cause if isinstance(err.cause, Exception) else err
                raise RuntimeError(f"a Ray task of configs {group} failed: {type(cause).__name__}: "
                                   f"{str(cause).splitlines()[0] if str(cause) else ''}") from err
            except self.ray.exceptions.RayError:  # its worker was lost, even after the retries
                unfinished.extend(group)
                continue
            for outcome in outcomes:
                if outcome.get("run_id"):
                    recorder.logged_elsewhere(outcome["index"], outcome["run_id"], outcome["history"])
                else:
                    recorder.keep(outcome["record"], outcome["files"])
        return unfinished
