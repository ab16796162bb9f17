"""A search's population: the cohorts of its live configs (one compiled program per shape), by config index.

What it is for: the searches (``halving``, ``pbt``, ``optuna``) train, stop and continue configs by their
index in the sweep; ``Population`` groups them by ``group_key`` into ``Cohort``s, trains every cohort to an
epoch (one after another), stops (``prune``) and continues (``keep``) configs across cohorts, hands each
config to the recorder once it has ended (never one already logged or spooled), and saves or restores the
live configs' parameters, optimizer states and histories in the spool for ``--resume``.
What it is not: no policy (which configs continue is the search's decision), no MLflow.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from jaxbp.sweeps.contracts import Progress
from jaxbp.sweeps.recorder import Recorder
from jaxbp.training.cohort import Cohort, group_key

STATE = "state.json"


class Population:
    """Configs ``indices`` of ``items`` (the sweep's (point, config) list), one ``Cohort`` per shape.
    ``states``/``histories`` (by index) start configs where an earlier session saved them (``save``).
    ``annotate(index)`` gives the (tags, files) a config's record gets when it is handed to the recorder."""

    def __init__(self, items: list, indices: Sequence[int], data, recorder: Recorder, *,
                 states: dict[int, bytes] | None = None, histories: dict[int, list[dict]] | None = None,
                 annotate: Callable[[int], tuple[dict, dict]] | None = None):
        self.items, self.data, self.recorder, self.annotate = items, data, recorder, annotate
        groups: dict[tuple, list[int]] = {}
        for i in indices:
            groups.setdefault(group_key(items[i][1]), []).append(i)
        self.cohorts = [(Cohort([items[i][1] for i in group], data,
                                states=[states[i] for i in group] if states else None,
                                histories=[histories[i] for i in group] if histories else None), group)
                        for group in groups.values()]
        self.submitted: set[int] = set()

    def _where(self, i: int) -> tuple[Cohort, int]:
        for cohort, group in self.cohorts:
            if i in group:
                return cohort, group.index(i)
        raise KeyError(f"config {i} is not in this population")

    @property
    def live(self) -> list[int]:
        """The indices of the configs still training, cohort by cohort."""
        return [group[k] for cohort, group in self.cohorts for k in cohort.live]

    def history(self, i: int) -> list[dict]:
        cohort, k = self._where(i)
        return cohort.members[k].history

    def cohort_of(self, i: int) -> tuple[Cohort, int]:
        """(the cohort of config ``i``, its index there)."""
        return self._where(i)

    def train(self, until: int, progress: Progress | None = None) -> None:
        """Every live config to epoch ``until`` (cohort after cohort); configs that end are handed on."""
        for cohort, group in self.cohorts:
            if live := cohort.live:
                if progress:
                    progress.group(len(live), until)
                cohort.train(until, [lambda k, metrics, g=group: progress.epoch(g[k], metrics)] if progress else [])
        self.hand_on()

    def prune(self, indices: Sequence[int], message: str) -> None:
        """Stop configs ``indices`` now (status "pruned", ``message`` says why) and hand them on."""
        for i in indices:
            cohort, k = self._where(i)
            cohort.prune(k, message)
        self.hand_on()

    def keep(self, indices: Sequence[int]) -> None:
        """Only configs ``indices`` go on, each cohort in a program of its kept configs; a cohort keeping none
        is dropped (all its configs must have ended)."""
        kept = set(indices)
        cohorts = []
        for cohort, group in self.cohorts:
            mine = [k for k, i in enumerate(group) if i in kept]
            if mine:
                cohort.keep(mine)
                cohorts.append((cohort, group))
        self.cohorts = cohorts

    def hand_on(self) -> None:
        """Give the recorder every config that has ended and was not handed on, logged or spooled before."""
        for cohort, group in self.cohorts:
            for k, i in enumerate(group):
                result = cohort.members[k].result
                if result is None or i in self.submitted:
                    continue
                self.submitted.add(i)
                if i in self.recorder.done or self.recorder.spool.has(i):
                    continue  # an earlier session logged it
                tags, files = self.annotate(i) if self.annotate else ({}, {})
                self.recorder.submit(i, *self.items[i], result, self.data, tags=tags, files=files)

    def save(self, folder: Path, extra: dict) -> None:
        """Write every live config's state and history, and ``extra`` (the search's own position), to
        ``folder`` (``write``). Configs that ended before are in the spool first (the recorder is waited for),
        so a resumed search, which starts from the live configs, misses none."""
        self.recorder.wait()
        live = [(group[k], cohort, k) for cohort, group in self.cohorts for k in cohort.live]
        write(folder, ((i, cohort.state(k)) for i, cohort, k in live),
              {i: cohort.members[k].history for i, cohort, k in live}, extra)


def write(folder: Path, states: Iterable[tuple[int, bytes]], histories: dict[int, list[dict]], extra: dict) -> None:
    """One save: each (config index, state) in a file of this save's own name, then ``state.json`` (naming
    them, with the histories and ``extra``) replaced atomically, and only then the previous save's files
    removed. A kill at any moment leaves the previous complete save or this one, never a mix (one save's
    states under the other's histories would resume configs from the wrong epochs)."""
    folder.mkdir(parents=True, exist_ok=True)
    token, files = uuid.uuid4().hex[:12], {}
    for i, blob in states:
        files[i] = f"{i}.{token}.state"
        (folder / files[i]).write_bytes(blob)
    _atomic(folder / STATE, json.dumps({**extra, "histories": histories, "files": files}).encode())
    for path in folder.glob("*.state"):
        if path.name not in files.values():
            path.unlink()


def load(folder: Path) -> tuple[dict, dict[int, bytes], dict[int, list[dict]]] | None:
    """(extra, states, histories) of the last ``write`` to ``folder``, or None when there is none."""
    if not (folder / STATE).exists():
        return None
    saved = json.loads((folder / STATE).read_text())
    histories = {int(i): h for i, h in saved.pop("histories").items()}
    files = saved.pop("files", {})  # saves before they named their files (<i>.state) still load
    return saved, {i: (folder / files.get(str(i), f"{i}.state")).read_bytes() for i in histories}, histories


def _atomic(path: Path, blob: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
