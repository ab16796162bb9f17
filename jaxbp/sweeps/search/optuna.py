"""Optuna's samplers propose the configs, a batch at a time, trained together in the compiled programs.

What it is for: ``mode = "optuna"``. Optuna's ask-and-tell API asks for ``batch`` configs (``sampler``:
TPE, CMA-ES or random, seeded with ``seed``) from the ``[sweep]`` space (a list or {choice}: categorical, a
list of widths such as a hidden axis shown to Optuna as "100-30"; {log_uniform}, {uniform}, {int_uniform}:
log floats, floats, integers); they train together (one program per shape) and each is told the spec's
metric at its last epoch, up to ``trials`` configs. Config index = trial number (child tag ``optuna.trial``).
A diverged config is told the worst finite value of the metric over its epochs (so the sampler learns to
avoid it), FAIL when it has none. ``pruner = "median"`` reports the metric every epoch and stops a config
below the median of the completed trials at that epoch (status "pruned", Optuna state PRUNED); it starts
once 5 trials have completed, so never in the first batch. CMA-ES needs the ``cmaes`` package and two or
more numeric ranges; it draws categorical axes at random (Optuna's independent sampler).
The study lives in its own database (``[search] storage``, default ``optuna.db`` beside a SQLite
``mlflow.db``; never MLflow's: both keep an ``alembic_version`` table), named ``<name>-<digest>``. A new
sweep of the spec replaces it; ``--resume`` goes on with it. A batch is told once the recorder has spooled
or logged it; a trial a killed session left RUNNING is told from its child if that was logged, else marked
FAIL and its params asked again (a new number), so the sweep ends with ``trials`` configs, each logged once
(the sampler is seeded with ``seed`` + the trials so far: not the killed session's draws again). The parent
run gets ``optuna_trials.csv`` and ``optuna_trials.png``.
What it is not: no sampler of its own, and no asynchronous trials: a batch is asked, trained and told whole.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
from optuna.trial import TrialState

from jaxbp.sweeps.search import figures
from jaxbp.sweeps.search.population import Population
from jaxbp.sweeps.spec import config_of
from jaxbp.sweeps.tracking import metric_history

PARENT, ABANDONED = "jaxbp.parent_run_id", "jaxbp.abandoned"  # study user attrs
NUMERIC = ("log_uniform", "uniform", "int_uniform")


def _encode(value):
    """A categorical value as Optuna stores it: a list of ints as "100-30", other lists and tables as JSON."""
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "-".join(map(str, value))
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def default_storage(tracking_uri: str, storage: str | None) -> str:
    """The study's database: ``storage``, else a SQLite ``optuna.db`` beside a SQLite MLflow store; a
    ValueError in one line for any other store, or for MLflow's own database."""
    if storage is None:
        if not tracking_uri.startswith("sqlite:///"):
            raise ValueError(f"mode = \"optuna\" with tracking store {tracking_uri} needs [search] storage = "
                             "\"<database URI>\" for the Optuna study (only beside a sqlite:/// MLflow store "
                             "is a SQLite optuna.db the default)")
        mlflow_db = Path(tracking_uri[len("sqlite:///"):]).expanduser().resolve()
        name = "optuna.db" if mlflow_db.name != "optuna.db" else "optuna-study.db"
        return f"sqlite:///{mlflow_db.parent / name}"
    if storage == tracking_uri:
        raise ValueError(f"[search] storage must not be the MLflow database {tracking_uri}: both keep an "
                         "alembic_version table; give the Optuna study a database of its own")
    return storage


class OptunaSearch:
    """The ``Search`` of mode "optuna" (see the module docstring)."""

    def __init__(self, spec, tracking_uri: str):
        settings = spec.search
        self.url = default_storage(tracking_uri, settings["storage"])  # refused before anything is created
        self.trials, self.batch, self.seed = settings["trials"], settings["batch"], settings["seed"]
        self.sampler = settings["sampler"]
        self.pruner = settings["pruner"] == "median"
        self.metric, self.maximize, self.epochs = spec.metric, spec.maximize, spec.epochs
        self.space: dict[str, tuple] = {}  # axis -> ("categorical", {encoded: value}) or (range kind, bounds)
        for key, values in spec.sweep.items():
            kind, bounds = ("choice", values) if isinstance(values, list) else next(iter(values.items()))
            if kind == "choice":
                self.space[key] = ("categorical", {_encode(v): v for v in bounds})
            elif kind == "int_uniform" and math.ceil(bounds[0]) > math.floor(bounds[1]):
                raise ValueError(f"[sweep] {key}: int_uniform {bounds} holds no integer")
            else:
                self.space[key] = (kind, (math.ceil(bounds[0]), math.floor(bounds[1])) if kind == "int_uniform"
                                   else tuple(bounds))
        numeric = [k for k, (kind, _) in self.space.items() if kind in NUMERIC]
        if self.sampler == "cmaes":
            if len(numeric) < 2:
                raise ValueError(f"sampler = \"cmaes\" needs two or more numeric ranges in [sweep] (log_uniform, "
                                 f"uniform, int_uniform), got {numeric or 'none'}; use sampler = \"tpe\"")
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise ValueError("sampler = \"cmaes\" needs the cmaes package: pip install cmaes") from None

    def point(self, params: dict) -> dict:
        """A config's axis values (in the spec's order) from an Optuna trial's params."""
        return {k: kind_values[1][params[k]] if kind_values[0] == "categorical" else params[k]
                for k, kind_values in self.space.items()}

    def suggest(self, trial: optuna.Trial) -> dict:
        for key, (kind, values) in self.space.items():
            if kind == "categorical":
                trial.suggest_categorical(key, list(values))
            elif kind == "int_uniform":
                trial.suggest_int(key, *values)
            else:
                trial.suggest_float(key, *values, log=kind == "log_uniform")
        return self.point(trial.params)

    def study(self, spec, url: str, recorder) -> optuna.Study:
        """The study of this sweep's parent run in database ``url``: loaded on --resume, made anew for a new
        sweep (replacing an earlier sweep's)."""
        storage = optuna.storages.RDBStorage(url)
        name = f"{spec.name}-{spec.digest}"

        def make():
            return optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                       pruner=optuna.pruners.MedianPruner() if self.pruner else None,
                                       direction="maximize" if self.maximize else "minimize")

        study = make()
        if study.user_attrs.get(PARENT) not in (None, recorder.parent):  # an earlier sweep of this spec
            optuna.delete_study(study_name=name, storage=storage)
            study = make()
        if study.user_attrs.get(PARENT) is None:
            if recorder.done or recorder.spool.pending():
                raise ValueError(f"cannot resume: the Optuna study {name!r} is missing from {url}; run "
                                 "the sweep again without --resume")
            study.set_user_attr(PARENT, recorder.parent)
        seed = self.seed + len(study.trials)  # resumed: not the draws of the first session again
        study.sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe" else
                         optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
                         if self.sampler == "cmaes" else optuna.samplers.RandomSampler(seed=seed))
        return study

    def run(self, spec, items, data, recorder, progress) -> list[Path]:
        study, shape = self.study(spec, self.url, recorder), (data.n_in, data.n_classes)
        for trial in study.get_trials(deepcopy=False):  # (point, config) of every trial number
            if set(self.space) <= set(trial.params):
                self._place(items, trial.number, spec, self.point(trial.params), shape)
        self.recover(study, recorder)
        while (left := self.trials - len(self.counted(study))) > 0:
            asked = [study.ask() for _ in range(min(self.batch, left))]
            for trial in asked:
                self._place(items, trial.number, spec, self.suggest(trial), shape)
            self.train(study, asked, items, data, recorder, progress)
        return self.report(spec, study, recorder.spool.root)

    @staticmethod
    def _place(items: list, index: int, spec, point: dict, shape) -> None:
        items.extend([None] * (index + 1 - len(items)))
        items[index] = (point, config_of(spec, point, shape))

    def counted(self, study) -> list:
        """The trials that are configs of this sweep: told, and not left by a killed session."""
        abandoned = set(study.user_attrs.get(ABANDONED, []))
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.FAIL)) if t.number not in abandoned]

    def recover(self, study, recorder) -> None:
        """Trials a killed session left RUNNING: told from their child if it was logged or spooled, else FAIL
        (remembered as abandoned) and their params asked again."""
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            i = trial.number
            if i in recorder.done or recorder.spool.has(i):
                history = recorder.histories.get(i) or metric_history(recorder.tracker.client, recorder.done[i],
                                                                      [self.metric])
                status = recorder.statuses.get(i) or recorder.tracker.client.get_run(
                    recorder.done[i]).data.tags.get("status")
                self.tell(study, i, history, status)
            else:
                study.set_user_attr(ABANDONED, [*study.user_attrs.get(ABANDONED, []), i])
                study.tell(i, state=TrialState.FAIL)
                study.enqueue_trial(trial.params, user_attrs={"jaxbp.replaces": i})

    def train(self, study, asked: list, items, data, recorder, progress) -> None:
        """Train one asked batch together, reporting (and with the pruner, pruning) epoch by epoch; tell each
        trial once the recorder has spooled or logged its config."""
        trials = {t.number: t for t in asked}
        population = Population(items, list(trials), data, recorder,
                                annotate=lambda i: ({"optuna.trial": i}, {}))
        reported = dict.fromkeys(trials, 0)
        for e in range(1, self.epochs + 1) if self.pruner else [self.epochs]:
            live = population.live
            if not live:
                break
            population.train(e, progress)
            stop = []
            for i in live:
                history = population.history(i)
                for row in history[reported[i]:]:
                    if (v := row.get(self.metric)) is not None and math.isfinite(v):
                        trials[i].report(v, row["epoch"])
                reported[i] = len(history)
                if self.pruner and e < self.epochs and i in population.live and trials[i].should_prune():
                    stop.append(i)
            if stop:
                population.prune(stop, f"pruned at epoch {e} by Optuna's median pruner: {self.metric} worse than "
                                       "the median of the completed trials at that epoch")
        recorder.wait()
        for i, trial in trials.items():
            cohort, k = population.cohort_of(i)
            result = cohort.members[k].result
            trial.set_user_attr("jaxbp.status", result.status)
            self.tell(study, trial, result.history, result.status)

    def tell(self, study, trial, history: list[dict], status: str | None) -> None:
        """PRUNED for a pruned config; else the metric at its last epoch (diverged: its worst finite value
        over its epochs); FAIL when there is no finite value."""
        if status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
            return
        values = [row.get(self.metric) for row in (history if status == "diverged" else history[-1:])]
        values = [v for v in values if v is not None and math.isfinite(v)]
        if not values:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, (min if self.maximize else max)(values))

    def report(self, spec, study, folder: Path) -> list[Path]:
        """The parent's ``optuna_trials.csv`` (Optuna's trials table) and ``optuna_trials.png``: the metric of
        every config by trial number, with the best so far."""
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, png_path = folder / "optuna_trials.csv", folder / "optuna_trials.png"
        study.trials_dataframe().to_csv(csv_path, index=False)
        trials = self.counted(study)
        figures.optuna_figure(
            [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE],
            [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
             if t.state == TrialState.PRUNED and t.intermediate_values],
            [t.number for t in trials if t.state == TrialState.FAIL], self.maximize, self.metric, png_path,
            title=f"{spec.name}: Optuna {self.sampler}, {len(trials)} trials")
        return [csv_path, png_path]
