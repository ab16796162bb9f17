"""Successive halving and Hyperband inside the compiled programs: survivors keep their weights and go on.

What it is for: ``mode = "halving"`` (synchronous successive halving; Jamieson & Talwalkar 2016, Li et al.
2018): rung k trains the live configs up to r·f^k epochs (r = ``min_epochs``, f = ``reduction_factor``, the
last rung ends at ``[base] epochs``); after a rung the best ⌊n/f⌋ (at least one) by the spec's metric go on
**with their parameters and optimizer state**, gathered into a smaller program; the others stop there
(status "pruned"). Configs of different shapes are ranked together (one ladder) and trained shape by shape.
A config that diverges stops at once. ``mode = "hyperband"`` (Li et al. 2018) divides the configs, in a
seeded random order, among brackets of successive halving that start at r·f^b epochs (b = 0, 1, …: fewer
configs, more epochs each), in Hyperband's proportions ⌈(s_max+1)·f^s/(s+1)⌉.
Each compile is of one program size: at most one per rung and shape (the rungs are log_f(n) many).
The parent run gets ``rungs.csv`` (bracket, rung, epochs, configs in, configs kept) and ``ladder.png``.
``--resume``: the live configs' states are saved in the spool at the end of every rung (before ranking it),
so a resumed search ranks that rung again and goes on; configs already logged are not logged twice.
What it is not: no asynchronous halving (ASHA): every rung waits for all its configs, which train together.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from jaxbp.sweeps.recorder import run_name
from jaxbp.sweeps.search import figures
from jaxbp.sweeps.search.population import Population, load
from jaxbp.sweeps.tracking import metric_history
from jaxbp.training.metrics import TRAIN_COSTS


def rung_epochs(start: int, factor: int, most: int) -> list[int]:
    """The epochs at the end of each rung: start, start·f, start·f², … and ``most`` last."""
    epochs = []
    while start < most:
        epochs.append(start)
        start *= factor
    return [*epochs, most]


def bracket_sizes(n_configs: int, min_epochs: int, factor: int, most: int, brackets: int | None) -> list[tuple]:
    """Hyperband's brackets, most aggressive first: (first rung's epochs, how many of the ``n_configs``).
    Bracket b starts at min_epochs·f^b; configs are shared in proportion to ⌈(s_max+1)·f^s/(s+1)⌉ with
    s = s_max − b (largest remainders), every bracket getting at least one while there are enough."""
    s_max = len(rung_epochs(min_epochs, factor, most)) - 1
    count = s_max + 1 if brackets is None else brackets
    if count > s_max + 1:
        raise ValueError(f"[search] brackets = {count}, but from min_epochs = {min_epochs} to epochs = {most} with "
                         f"reduction_factor = {factor} there are only {s_max + 1}")
    count = min(count, n_configs)
    weights = [math.ceil((s_max + 1) / (s + 1) * factor**s) for s in range(s_max, s_max - count, -1)]
    exact = [n_configs * w / sum(weights) for w in weights]
    sizes = [max(1, int(x)) for x in exact]
    while sum(sizes) > n_configs:
        sizes[sizes.index(max(sizes))] -= 1
    for b in sorted(range(count), key=lambda b: int(exact[b]) - exact[b])[: n_configs - sum(sizes)]:
        sizes[b] += 1
    return [(min(min_epochs * factor**b, most), size) for b, size in enumerate(sizes)]


class SuccessiveHalving:
    """The ``Search`` of modes "halving" and "hyperband"."""

    def __init__(self, spec):
        self.metric, self.maximize, self.most = spec.metric, spec.maximize, spec.epochs
        self.factor, self.min_epochs = spec.search["reduction_factor"], spec.search["min_epochs"]
        self.hyperband, self.seed = spec.mode == "hyperband", spec.search.get("seed", 0)
        self.brackets = spec.search.get("brackets")
        if self.hyperband:  # refuse a bad bracket count before anything runs
            bracket_sizes(1, self.min_epochs, self.factor, self.most, self.brackets)

    def plan(self, n_configs: int) -> list[tuple[int, list[int]]]:
        """(first rung's epochs, config indices) per bracket."""
        if not self.hyperband:
            return [(self.min_epochs, list(range(n_configs)))]
        order = list(range(n_configs))
        random.Random(self.seed).shuffle(order)
        plan, at = [], 0
        for start, size in bracket_sizes(n_configs, self.min_epochs, self.factor, self.most, self.brackets):
            plan.append((start, sorted(order[at:at + size])))
            at += size
        return plan

    def value(self, history: list[dict]) -> float:
        """The spec's metric at a config's last epoch, signed so that larger is better (missing: worst)."""
        v = history[-1].get(self.metric)
        return -math.inf if v is None or not math.isfinite(v) else (v if self.maximize else -v)

    def run(self, spec, items, data, recorder, progress) -> list[Path]:
        folder = recorder.spool.search
        saved = load(folder)
        position, rows = (saved[0], saved[0]["rungs"]) if saved else ({"bracket": 0, "rung": -1}, [])
        plan = self.plan(len(items))
        for b, (start, members) in enumerate(plan):
            if b < position["bracket"]:
                continue
            epochs = rung_epochs(start, self.factor, self.most)
            resumed = saved is not None and b == position["bracket"]
            if resumed:  # the live configs at the end of the saved rung, to be ranked again
                live = [i for i in saved[2] if i in members]
                population = Population(items, live, data, recorder, states=saved[1], histories=saved[2])
                first, entered = position["rung"], position["entered"]
            else:
                todo = [i for i in members if i not in recorder.done and not recorder.spool.has(i)]
                population = Population(items, todo, data, recorder) if todo else None
                first, entered = 0, len(todo)
            for k in range(first, len(epochs)):
                if not (resumed and k == first):  # (the saved rung was trained: it is only ranked again)
                    if population is None or not population.live:
                        break
                    entering = population.live
                    entered = len(entering)
                    population.train(epochs[k], progress)
                    if epochs[k] < self.most:
                        population.save(folder, {"bracket": b, "rung": k, "entered": entered, "rungs": rows})
                if epochs[k] == self.most:  # the last rung: "kept" are those that trained to its end
                    ended = [i for i in entering if len(population.history(i)) == self.most]
                    rows.append({"bracket": b + 1, "rung": k + 1, "epochs": epochs[k], "configs_in": entered,
                                 "configs_kept": len(ended)})
                    break
                live = population.live
                ranked = sorted(live, key=lambda i: (-self.value(population.history(i)), i))
                keep = ranked[: max(1, entered // self.factor)]
                rows.append({"bracket": b + 1, "rung": k + 1, "epochs": epochs[k], "configs_in": entered,
                             "configs_kept": len(keep)})
                population.prune(ranked[len(keep):], f"pruned at epoch {epochs[k]} by successive halving: rung "
                                 f"{k + 1} kept the best {len(keep)} of {len(live)} by {self.metric}")
                if keep:
                    population.keep(keep)
            saved = None
        return self.report(spec, items, plan, rows, recorder, folder.parent)

    def report(self, spec, items, plan, rows: list[dict], recorder, folder: Path) -> list[Path]:
        """The parent's ``rungs.csv`` and ``ladder.png``."""
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "rungs.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, ["bracket", "rung", "epochs", "configs_in", "configs_kept"])
            writer.writeheader()
            writer.writerows(rows)
        recorder.wait()
        client, histories, pruned = recorder.tracker.client, {}, set()
        for i in range(len(items)):  # configs logged by an earlier session are read back from MLflow
            histories[i] = recorder.histories.get(i) or metric_history(client, recorder.done[i],
                                                                       [*TRAIN_COSTS, self.metric])
            status = recorder.statuses.get(i) or client.get_run(recorder.done[i]).data.tags.get("status")
            if status == "pruned":
                pruned.add(i)
        ladder = figures.ladder(histories, self.metric, [m for _, m in plan],
                              [rung_epochs(s, self.factor, self.most) for s, _ in plan], pruned,
                              folder / "ladder.png", title=f"{spec.name}: {spec.mode} by {self.metric}",
                              names={i: run_name(point) for i, (point, _) in enumerate(items)})
        return [folder / "rungs.csv", ladder]
