"""Adaptive searches against brute force and against Optuna the way a user writes it today.

What it measures: one search space on Fashion-MNIST (``jaxbp.load_dataset("fashion-mnist")``: 50000 training,
10000 validation, 10000 test examples), networks [784, h, 10], sigmoid + quadratic cost, m = 10, float32,
η log-uniform in [0.05, 10] × h ∈ {30, 100} × init ∈ {normal, scaled}, at most ``--epochs`` epochs (27);
``--configs`` configs (54) drawn with one seed (``sample_seed`` 0: every method of jaxbp gets the same
configs), each searched for the best validation accuracy:

(a) ``grid``: every config for every epoch, trained together (configs of one shape as one program): today's
    runner, ``mode = "random"`` with ``samples``;
(b) ``halving``: successive halving from 1 epoch with reduction factor 3 (``mode = "halving"``);
(c) ``hyperband``: every bracket of Hyperband, same r and factor (``mode = "hyperband"``);
(d) ``optuna``: Optuna's TPE sampler (seed 0) and MedianPruner written as an Optuna user writes it for jaxbp
    today: one ``jaxbp.train`` per trial, ``trial.report`` each epoch from a callback, ``TrialPruned`` raised
    there when the pruner says so; as many trials as (a) has configs. It logs nothing to MLflow (a user's
    loop); (a)–(c) are whole ``jaxbp.run_sweep`` runs into a fresh SQLite MLflow store, logging, checkpoints
    and figures included.

(e) ``programs``: why survivors are gathered into smaller programs rather than masked: for each shape, the
    compile time of the program of K configs and the time of one epoch at K, for the K of successive halving
    (27 → 9 → 3 → 1 per shape): continuing 9 survivors in the 27-wide program (dead slots masked) costs the
    27-wide epoch every epoch; gathering them costs one compile, then the 9-wide epoch.

For (a)–(d): the wall time, how many config-epochs were trained, the config picked (best validation accuracy
among those that ran to the end; Optuna: its best trial) and that config's final test accuracy. Goals
(printed met / NOT met): (b) picks a config whose test accuracy is at most 0.003 below that of (a)'s pick
(better counts as met: the goal is not to lose accuracy) in ≤ 1/4 of (a)'s wall time;
(b) ≥ 3× faster than (d) at equal or better test accuracy. One run, methods one after the other, after a
1-config, 1-epoch sweep that no method is timed on (the process's first ``run_sweep`` pays imports and
first-use costs, about 9 s here, which would otherwise land on whichever method runs first); with
``--repeats R`` the methods run R rounds in turn (each into a fresh store) and the table gives each method's
median time, the goal line also the median of the rounds' paired halving/grid ratios. On a shared machine
absolute times move with the load (here one halving run took 66 s and the next, of the same code, 52 s): the
ratios are the result.

    .venv/bin/python benchmarks/search_speed.py                           # the full comparison (long on a CPU)
    .venv/bin/python benchmarks/search_speed.py --epochs 9 --configs 27   # smaller, same shape
    .venv/bin/python benchmarks/search_speed.py --methods halving,optuna  # some of them
    .venv/bin/python benchmarks/search_speed.py --methods grid,halving --repeats 3  # the time goal, 3 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from machine import machine_header

import jaxbp
from jaxbp.app.console import quiet_libraries
from jaxbp.sweeps.spec import parse_spec

DATASET, ETA, HIDDEN, INITS = "fashion-mnist", (0.05, 10.0), (30, 100), ("normal", "scaled")
BASE = {"sizes": [784, 30, 10], "activation": "sigmoid", "cost": "quadratic", "batch_size": 10, "dtype": "float32"}
METHODS = ("grid", "halving", "hyperband", "optuna", "programs")
RUNG_SIZES = (27, 9, 3, 1)  # configs per shape in halving's rungs (54 configs, 2 shapes, factor 3)
GOAL_GAP, GOAL_TIME_FRACTION, GOAL_VS_OPTUNA = 0.003, 0.25, 3.0


def spec_table(mode: str, epochs: int, configs: int) -> dict:
    """The sweep spec of jaxbp's methods: the same space and the same ``configs`` draws for each."""
    search = {"min_epochs": 1, "reduction_factor": 3} if mode in ("halving", "hyperband") else {}
    return {"name": f"search_speed_{mode}", "dataset": DATASET, "metric": "validation_accuracy",
            "mode": "random" if mode == "grid" else mode, "samples": configs, "sample_seed": 0,
            "base": {**BASE, "epochs": epochs}, **({"search": search} if search else {}),
            "sweep": {"eta": {"log_uniform": list(ETA)}, "hidden": [[h] for h in HIDDEN], "init": list(INITS)}}


def run_jaxbp(mode: str, epochs: int, configs: int, folder: str) -> dict:
    """One ``run_sweep`` of the space in ``mode`` into a fresh SQLite store under ``folder``."""
    os.environ["JAXBP_SPOOL"] = f"{folder}/spool-{mode}"
    spec = parse_spec(spec_table(mode, epochs, configs))
    start = time.perf_counter()
    result = jaxbp.run_sweep(spec, f"sqlite:///{folder}/{mode}.db")
    seconds = time.perf_counter() - start
    full = [r for r in result.rows if r.epochs == epochs and r.value is not None]
    pick = max(full, key=lambda r: r.value)
    return {"method": mode, "seconds": seconds, "configs": len(result.rows),
            "config_epochs": sum(r.epochs or 0 for r in result.rows), "pick": pick.name,
            "validation": pick.value, "test": pick.final["test_accuracy"]}


def warm_up(folder: str) -> None:
    """One untimed 1-config, 1-epoch sweep of the same data and network (into ``folder``/warm-up): the
    process's first ``run_sweep`` pays imports and first-use costs that no method should be charged for."""
    os.makedirs(f"{folder}/warm-up")
    run_jaxbp("grid", 1, 1, f"{folder}/warm-up")


def run_optuna(epochs: int, trials: int) -> dict:
    """Optuna TPE + MedianPruner over the same space, one ``jaxbp.train`` per trial (no MLflow)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = jaxbp.load_dataset(DATASET)
    trained = {"epochs": 0}

    def objective(trial):
        eta = trial.suggest_float("eta", *ETA, log=True)
        hidden = trial.suggest_categorical("hidden", list(HIDDEN))
        init = trial.suggest_categorical("init", list(INITS))
        config = jaxbp.TrainConfig(**{**BASE, "sizes": (784, hidden, 10)}, epochs=epochs, eta=eta, init=init)

        def report(metrics):
            trained["epochs"] += 1
            trial.set_user_attr("test_accuracy", metrics["test_accuracy"])
            trial.report(metrics["validation_accuracy"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = jaxbp.train(config, data, callbacks=[report])
        return result.history[-1]["validation_accuracy"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - start
    best = study.best_trial
    name = f"eta={best.params['eta']:.4g} hidden={best.params['hidden']} init={best.params['init']}"
    return {"method": "optuna", "seconds": seconds, "configs": len(study.trials), "config_epochs": trained["epochs"],
            "pick": name, "validation": best.value, "test": best.user_attrs["test_accuracy"]}


def programs(epochs: int) -> list[dict]:
    """Per shape and K of ``RUNG_SIZES``: seconds to compile the K-config program, and of one epoch of it."""
    from jaxbp.training.cohort import Cohort

    data, out = jaxbp.load_dataset(DATASET), []
    for h in HIDDEN:
        for k in RUNG_SIZES:
            configs = [jaxbp.TrainConfig(**{**BASE, "sizes": (784, h, 10)}, epochs=epochs, eta=0.05 * 1.1**j)
                       for j in range(k)]
            cohort = Cohort(configs, data)
            start = time.perf_counter()
            cohort.compile()
            compiled = time.perf_counter() - start
            cohort.train(1)
            seconds = cohort.members[0].history[0]["epoch_seconds"]
            out.append({"hidden": h, "k": k, "compile": compiled, "epoch": seconds})
    return out


def programs_table(rows: list[dict]) -> str:
    lines = ["| hidden | K | compile (s) | epoch at K (s) | a rung's epoch saved by gathering K survivors of the "
             "previous K (s) |", "|---:|---:|---:|---:|---:|"]
    for prev, r in zip([None, *rows], rows):
        saved = f"{prev['epoch'] - r['epoch']:.2f}" if prev and prev["hidden"] == r["hidden"] else "—"
        lines.append(f"| {r['hidden']} | {r['k']} | {r['compile']:.2f} | {r['epoch']:.2f} | {saved} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    grid = next((r for r in rows if r["method"] == "grid"), None)
    lines = ["| method | wall time (s) | × grid time | configs | config-epochs | pick (best validation) | "
             "validation acc | test acc | test − grid's |", "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['seconds'] / grid['seconds']:.3f}" if grid else "—"
        gap = f"{r['test'] - grid['test']:+.4f}" if grid else "—"
        lines.append(f"| {r['method']} | {r['seconds']:.0f} | {ratio} | {r['configs']} | {r['config_epochs']} | "
                     f"{r['pick']} | {r['validation']:.4f} | {r['test']:.4f} | {gap} |")
    return "\n".join(lines)


def goals(rows: list[dict]) -> list[str]:
    by = {r["method"]: r for r in rows}
    out = []
    if "grid" in by and "halving" in by:
        a, b = by["grid"], by["halving"]
        ok = b["test"] >= a["test"] - GOAL_GAP and b["seconds"] <= GOAL_TIME_FRACTION * a["seconds"]
        paired = [h / g for h, g in zip(b["rounds"], a["rounds"])]
        rounds = (f"; rounds' paired ratios {', '.join(f'{r:.3f}' for r in paired)}, median "
                  f"{statistics.median(paired):.3f}") if len(paired) > 1 else ""
        out.append(f"halving's pick at most {GOAL_GAP} below grid's ({b['test'] - a['test']:+.4f}) in ≤ "
                   f"{GOAL_TIME_FRACTION} of its time ({b['seconds'] / a['seconds']:.3f}{rounds}): "
                   f"{'met' if ok else 'NOT met'}")
    if "optuna" in by and "halving" in by:
        b, d = by["halving"], by["optuna"]
        speedup = d["seconds"] / b["seconds"]
        ok = speedup >= GOAL_VS_OPTUNA and b["test"] >= d["test"]
        out.append(f"halving ≥ {GOAL_VS_OPTUNA}× faster than Optuna one-train-per-trial ({speedup:.2f}×) at equal "
                   f"or better test accuracy ({b['test']:.4f} vs {d['test']:.4f}): {'met' if ok else 'NOT met'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=27, help="the most epochs of any config (default 27)")
    parser.add_argument("--configs", type=int, default=54, help="configs drawn (and Optuna trials; default 54)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"some of {','.join(METHODS)}")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the methods, in turn (default 1)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if bad := [m for m in methods if m not in METHODS]:
        parser.error(f"unknown methods {bad}; choose from {', '.join(METHODS)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    quiet_libraries()
    print(machine_header())
    print(f"{args.configs} configs, at most {args.epochs} epochs, Fashion-MNIST [784, h, 10], m = 10", flush=True)
    timed = [m for m in methods if m != "programs"]
    rounds: dict[str, list[dict]] = {m: [] for m in timed}
    with tempfile.TemporaryDirectory() as folder:
        if set(timed) - {"optuna"}:
            warm_up(folder)
        for r in range(args.repeats):
            os.makedirs(f"{folder}/{r}")
            for method in timed:
                row = run_optuna(args.epochs, args.configs) if method == "optuna" else \
                    run_jaxbp(method, args.epochs, args.configs, f"{folder}/{r}")
                rounds[method].append(row)
                print(f"{method}: {row['seconds']:.0f} s, {row['config_epochs']} config-epochs, pick {row['pick']} "
                      f"(test {row['test']:.4f})", flush=True)
    compiles = programs(args.epochs) if "programs" in methods else []
    rows = [{**runs[0], "seconds": statistics.median(x["seconds"] for x in runs),
             "rounds": [x["seconds"] for x in runs]} for runs in rounds.values()]
    if rows:
        print(table(rows))
    for line in goals(rows):
        print(line)
    if compiles:
        print(programs_table(compiles))


if __name__ == "__main__":
    main()
