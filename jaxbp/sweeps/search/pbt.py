"""Population-based training inside the compiled programs: the worst configs copy the best ones' weights.

What it is for: ``mode = "pbt"`` (synchronous PBT; Jaderberg et al. 2017). The sweep's configs are the
population; each shape's configs train together as one ``Cohort``. A generation is ``interval`` epochs; at its
end each cohort ranks its live configs by the spec's metric (missing or NaN: worst) and the bottom ``quantile``
(``quantile_size``) exploit: each copies the parameters and optimizer state of a config drawn uniformly from the
top ``quantile`` (``Cohort.exploit``, in the program's state: no recompiling, no checkpoint), then explores: its
η, and λ when ``l2`` is a swept axis, become the source's times a factor drawn from ``perturb`` (one draw per
hyperparameter). Draws come from ``random.Random`` seeded by (seed, generation, shape), so a resumed search
draws the same. Configs train to ``[base] epochs``; one that diverges or stops early ends there; none is pruned.
Each config logs its η (and λ when swept) per epoch as metrics ``eta`` (``l2``), gets the tag ``jaxbp.lineage``
(its copies in words) and ``lineage.json``: its own copies, the per-epoch schedule of the weights it ends with
(in which config's slot, hence with whose mini-batch order, and with which η and λ each epoch trained them,
following copies back through its ancestors) and the root ancestor whose initial weights they started from.
The parent run gets ``pbt.csv`` (one row per exploit) and ``pbt.png``.
``--resume``: the live configs' states, the event log and the schedules are saved in the spool at the end of
every generation (before exploiting), so a resumed search exploits that generation again and goes on.
What it is not: no asynchronous PBT (every generation waits for all its configs), no PBT across shapes (a
config copies only configs of its own cohort), no search over other hyperparameters than η and λ.
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
from jaxbp.training.cohort import Cohort, group_key
from jaxbp.training.metrics import TRAIN_COSTS

LINEAGE_TAG, MAX_TAG = "jaxbp.lineage", 5000
EVENT_FIELDS = ("generation", "epoch", "target", "source", "old_eta", "new_eta", "old_l2", "new_l2",
                "eta_factor", "l2_factor", "target_name", "source_name")
REPLAY = ("start from the root's initial parameters and optimizer state (its seed and init); for each epoch e of "
          "the schedule set the optimizer's eta and l2 to the entry's and train one epoch with the mini-batch order "
          "of the entry's config: jax.random.fold_in(config_keys(that config).shuffle, e)")


def quantile_size(n: int, quantile: float) -> int:
    """How many of ``n`` ranked configs are the bottom (and the top): q·n rounded half up, at least 1 when n ≥ 2
    and at most ⌊n/2⌋ (bottom and top never overlap); 0 for fewer than 2 configs."""
    return 0 if n < 2 else min(n // 2, max(1, math.floor(quantile * n + 0.5)))


class PopulationBasedTraining:
    """The ``Search`` of mode "pbt"."""

    def __init__(self, spec):
        self.metric, self.maximize, self.most = spec.metric, spec.maximize, spec.epochs
        s = spec.search
        self.interval, self.quantile, self.perturb, self.seed = s["interval"], s["quantile"], s["perturb"], s["seed"]
        self.swept_l2 = "l2" in spec.sweep
        self.events: list[dict] = []  # every exploit so far, in order (pbt.csv)
        self.schedules: dict[int, list[dict]] = {}  # config → per epoch {epoch, config, eta, l2} of its weights
        self.names: list[str] = []

    def value(self, row: dict) -> float:
        """The spec's metric of one epoch, signed so that larger is better (missing or not finite: worst)."""
        v = row.get(self.metric)
        return -math.inf if v is None or not math.isfinite(v) else (v if self.maximize else -v)

    def exploit(self, cohort: Cohort, group: list[int], generation: int, shape: int = 0) -> list[dict]:
        """Exploit and explore in one cohort (``group``: its members' config indices, ``shape``: its number in
        the sweep, for the seed of the draws): the bottom configs copy top ones and perturb η (λ); the events."""
        ranked = sorted(cohort.live, key=lambda k: (-self.value(cohort.members[k].history[-1]), group[k]))
        size = quantile_size(len(ranked), self.quantile)
        rng = random.Random(f"pbt {self.seed} {generation} {shape}")
        events = []
        for k in ranked[len(ranked) - size:] if size else []:
            s = rng.choice(ranked[:size])
            old, source = cohort.hyperparams(k), cohort.hyperparams(s)
            eta_factor = rng.choice(self.perturb)
            l2_factor = rng.choice(self.perturb) if self.swept_l2 else 1
            cohort.exploit(k, s, eta=source["eta"] * eta_factor, l2=source["l2"] * l2_factor)
            new = cohort.hyperparams(k)
            events.append({"generation": generation, "epoch": cohort.epoch, "target": group[k], "source": group[s],
                           "old_eta": old["eta"], "new_eta": new["eta"], "old_l2": old["l2"], "new_l2": new["l2"],
                           "eta_factor": eta_factor, "l2_factor": l2_factor})
        return events

    def run(self, spec, items, data, recorder, progress) -> list[Path]:
        folder = recorder.spool.search
        self.names = [run_name(point) for point, _ in items]
        self.configs = [config for _, config in items]
        numbers: dict[tuple, int] = {}
        shapes = [numbers.setdefault(group_key(config), len(numbers)) for config in self.configs]
        saved = load(folder)
        if saved:  # the live configs at the end of the saved generation, to be exploited again
            extra, states, histories = saved
            generation, self.events = extra["generation"], extra["events"]
            self.schedules = {int(i): s for i, s in extra["schedules"].items()}
            population = Population(items, list(histories), data, recorder, states=states, histories=histories,
                                    annotate=self.annotate)
        else:
            generation = 0
            todo = [i for i in range(len(items)) if i not in recorder.done and not recorder.spool.has(i)]
            population = Population(items, todo, data, recorder, annotate=self.annotate) if todo else None
        self.population = population
        while population is not None and population.live:
            if not saved:
                until = min((generation + 1) * self.interval, self.most)
                population.train(until, progress)
                self.note(population.live)
                if until == self.most or not population.live:
                    break
                generation += 1
                population.save(folder, {"generation": generation, "events": self.events,
                                         "schedules": self.schedules})
            saved = None
            for cohort, group in population.cohorts:
                for event in self.exploit(cohort, group, generation, shapes[group[0]]):
                    event.update(target_name=self.names[event["target"]], source_name=self.names[event["source"]])
                    self.schedules[event["target"]] = list(self.schedules[event["source"]])
                    self.events.append(event)
        return self.report(spec, items, recorder, folder.parent)

    def note(self, indices) -> None:
        """Write the η (and λ when swept) each of configs ``indices`` trained its newest epochs with into their
        history rows (logged as per-epoch metrics), and extend their schedules with those epochs."""
        for i in indices:
            cohort, k = self.population.cohort_of(i)
            hp, history = cohort.hyperparams(k), cohort.members[k].history
            schedule = self.schedules.setdefault(i, [])
            for row in history:
                if "eta" not in row:
                    row["eta"] = hp["eta"]
                    if self.swept_l2:
                        row["l2"] = hp["l2"]
            schedule.extend({"epoch": row["epoch"], "config": i, "eta": row["eta"], "l2": row.get("l2", hp["l2"])}
                            for row in history[len(schedule):])

    def annotate(self, i: int) -> tuple[dict, dict]:
        """The tag ``jaxbp.lineage`` and file ``lineage.json`` of config ``i`` as it ends."""
        self.note([i])
        own = [e for e in self.events if e["target"] == i]
        words = []
        for e in own:
            text = (f"epoch {e['epoch']}: copied config {e['source']} ({e['source_name']}), "
                    f"eta ×{e['eta_factor']:g} → {e['new_eta']:.4g}")
            words.append(text + (f", l2 ×{e['l2_factor']:g} → {e['new_l2']:.4g}" if self.swept_l2 else ""))
        tag = "; ".join(words) or "no copies"
        if len(tag) > MAX_TAG:
            tag = tag[: MAX_TAG - 60].rsplit(";", 1)[0] + f"; … ({len(own)} copies in all: see lineage.json)"
        schedule = [{**entry, "name": self.names[entry["config"]]} for entry in self.schedules[i]]
        root = schedule[0]["config"] if schedule else i
        config = self.configs[root]
        lineage = {
            "config": i, "name": self.names[i],
            "events": [{"generation": e["generation"], "epoch": e["epoch"], "copied_from": e["source"],
                        "copied_from_name": e["source_name"], "eta": e["new_eta"], "l2": e["new_l2"],
                        "eta_before": e["old_eta"], "l2_before": e["old_l2"]} for e in own],
            "root": {"config": root, "name": self.names[root], "seed": config.seed, "init": config.init,
                     "eta": config.eta, "l2": config.l2},
            "schedule": schedule, "replay": REPLAY,
            "pbt": {"interval": self.interval, "quantile": self.quantile, "perturb": self.perturb, "seed": self.seed,
                    "metric": self.metric}}
        return {LINEAGE_TAG: tag}, {"lineage.json": lineage}

    def report(self, spec, items, recorder, folder: Path) -> list[Path]:
        """The parent's ``pbt.csv`` (one row per exploit) and ``pbt.png``."""
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "pbt.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, EVENT_FIELDS)
            writer.writeheader()
            writer.writerows(self.events)
        recorder.wait()
        keys = [*TRAIN_COSTS, self.metric, "eta"]
        histories = {i: recorder.histories.get(i) or metric_history(recorder.tracker.client, recorder.done[i], keys)
                     for i in range(len(items))}
        figure = figures.pbt_figure(histories, self.metric, self.events,
                                  list(range(self.interval, self.most, self.interval)), folder / "pbt.png",
                                  title=f"{spec.name}: population-based training by {self.metric}",
                                  names=dict(enumerate(self.names)))
        return [folder / "pbt.csv", figure]
