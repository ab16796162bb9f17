"""The local executor: every group of a sweep in this process, one compiled program after another.

What it is for: ``run_sweep``'s default; configs are finished and logged on the recorder's thread while the
next group trains. What it is not: no scale-out (see ``executors.ray``).
"""

from __future__ import annotations

from jaxbp.sweeps.contracts import Progress
from jaxbp.sweeps.recorder import Recorder
from jaxbp.training.together import train_together


class LocalExecutor:
    """Trains each group with ``train_together`` in this process."""

    def run(self, spec, items, groups: list[list[int]], data, recorder: Recorder,
            progress: Progress | None) -> list[int]:
        """Train ``groups`` (lists of config indices); returns the indices left unfinished (none here)."""
        for group in groups:
            if progress:
                progress.group(len(group), items[group[0]][1].epochs)
            results = train_together([items[i][1] for i in group], data,
                                     callbacks=[progress.epoch] if progress else [])
            for i, result in zip(group, results):
                recorder.submit(i, *items[i], result, data)
        return []
