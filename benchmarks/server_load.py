"""How the team's tracking server holds load: P clients replay the logging of finished sweeps, SQLite and
PostgreSQL side by side.

The replayed sweep is experiments/quickstart.toml narrowed to one seed and two widths (digits, 4 η × 2 widths
= 8 configs, 2 groups, 30 epochs), trained once here with jaxbp's own training (``train_together``) and finished
with ``finish_config`` into a spool: the records and checkpoints a sweep keeps before it logs them. Each client
then logs its own copy of that spool through jaxbp's own logging path (``Tracker.start_parent``; ``Recorder.log``
per config, i.e. ``Tracker.log_child``; then ``run.conclude``'s calls but its figures: ``finished_children``,
``ranked_rows``, ``Tracker.finish_parent`` with ``results.csv``) against one ``jaxbp server`` (MLflow,
``--workers 2``) whose store is SQLite or PostgreSQL (a cluster made by ``services/postgres/dev-cluster.sh``).
Nothing trains while the clients run: what is measured is the server.

Two loads per store, for P = 1, 4, 16, 64 clients:
- paced: each client logs its configs at the moments the trained sweep finished them (that sweep's own pace on
  this machine, ``--speed`` times faster), client i starting i/P of that sweep's duration after the first: what
  P sweeps running at once, started at different times, send. Goal (issue 12): at P = 16 the
  p95 latency of ``log_batch`` ≤ 3× its idle value (P = 1) on PostgreSQL.
- flat out: each client logs back to back, without pauses: where the server saturates (requests per second
  stop growing with P while latency grows).

Every HTTP request of the clients is timed (``requests.Session.request`` wrapped in the client processes);
clients are threads spread over up to ``--processes`` processes. After each load the store itself is queried:
each client's sweep must hold every config exactly once, each with its full metric history.

    .venv/bin/python benchmarks/server_load.py
    .venv/bin/python benchmarks/server_load.py --clients 1,4 --stores sqlite --loads paced   # a quick look
    .venv/bin/python benchmarks/server_load.py --replot docs/server_load.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "quickstart.toml"
DEV_CLUSTER = ROOT / "services" / "postgres" / "dev-cluster.sh"
JAXBP = str(Path(sys.executable).with_name("jaxbp"))
LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"
CLIENTS, STORES, LOADS = (1, 4, 16, 64), ("sqlite", "postgresql"), ("paced", "flat out")
GOAL_P, GOAL_RATIO = 16, 3.0
# MLflow's clients and server send usage telemetry unless told not to: off, so that no request here leaves the
# machine (nor fails for want of a network) and only the tracking traffic is timed.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


# ---------------------------------------------------------------- the sweep that is replayed


def replayed_spec():
    """The quickstart, narrowed to 8 configs (seed 0, hidden 10 and 30): two groups, two moments of logging."""
    import tomllib

    from jaxbp.sweeps.spec import parse_spec

    table = tomllib.loads(SPEC.read_text())
    table["sweep"] = {**table["sweep"], "seed": [0], "hidden": [[10], [30]]}
    return parse_spec(table, SPEC.read_text(), str(SPEC))


def train_template(folder: Path) -> list[float]:
    """Train the quickstart sweep once and spool its finished configs in ``folder`` (as a sweep does before
    logging); returns each config's finishing moment, in seconds after the sweep's first config started."""
    from jaxbp.sweeps.recorder import finish_config
    from jaxbp.sweeps.spec import expand
    from jaxbp.sweeps.spool import Spool
    from jaxbp.training.data import load_dataset
    from jaxbp.training.together import group_key, train_together

    spec = replayed_spec()
    data = load_dataset(spec.dataset, validation=spec.validation)
    items = expand(spec, (data.n_in, data.n_classes))
    spool = Spool(spec.digest)
    spool.root = folder
    groups: dict[tuple, list[int]] = {}
    for i, (_, config) in enumerate(items):
        groups.setdefault(group_key(config), []).append(i)
    for group in groups.values():
        for i, result in zip(group, train_together([items[i][1] for i in group], data)):
            spool.put(finish_config(i, *items[i], result, data, spool.folder(i)))
    (folder / "spec.toml").write_text(spec.source)
    records = spool.pending()
    began = min(r["started_at"] for r in records)
    return [r["ended_at"] - began for r in records]


def reuse_template(folder: Path) -> list[float]:
    """``train_template``'s answer for a template it made before (``--work`` kept from an earlier run)."""
    records = sorted((json.loads(p.read_text()) for p in folder.glob("*/record.json")), key=lambda r: r["index"])
    began = min(r["started_at"] for r in records)
    return [r["ended_at"] - began for r in records]


# ---------------------------------------------------------------- the clients (in their own processes)


def _instrument(samples: list) -> None:
    """Time every HTTP request this process makes: (path, seconds, status) appended to ``samples``."""
    import requests

    original = requests.Session.request

    def timed(self, method, url, *args, **kwargs):
        start = time.perf_counter()
        status = -1
        try:
            response = original(self, method, url, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            samples.append((urlparse(url).path, time.perf_counter() - start, status))

    requests.Session.request = timed


def _client(url: str, experiment: str, template: Path, folder: Path, offsets: dict[int, float] | None,
            go: float, out: dict) -> None:
    """One client: a sweep's logging from a copy of the template spool (paced by ``offsets`` if given)."""
    from jaxbp.sweeps.recorder import Recorder
    from jaxbp.sweeps.results import ranked_rows, write_csv
    from jaxbp.sweeps.spool import Spool
    from jaxbp.sweeps.tracking import Tracker

    spec = replayed_spec()
    time.sleep(max(0.0, go - time.time()))  # a paced client starts when its sweep would have
    shutil.copytree(template, folder)
    spool = Spool(spec.digest)
    spool.root = folder
    tracker = Tracker(url, experiment)
    parent = tracker.start_parent(f"{experiment} {folder.name}", spec.digest, {"dataset": spec.dataset},
                                  folder / "spec.toml")
    recorder = Recorder(tracker, parent, spool, {}, None)
    for record in sorted(spool.pending(), key=lambda r: offsets[r["index"]] if offsets else r["index"]):
        if offsets:
            time.sleep(max(0.0, go + offsets[record["index"]] - time.time()))
        recorder.log(record)
    if recorder.failure is not None:
        out["error"] = f"{type(recorder.failure).__name__}: {recorder.failure}"
        return
    tracker.finished_children(parent)  # as run.conclude: what a timed-out request left behind goes
    rows = ranked_rows(tracker, parent, spec)
    best = rows[0] if rows and rows[0].value is not None else None
    tracker.finish_parent(parent, best_run_id=best and best.run_id, metric=spec.metric, best=best and best.value,
                          artifacts=[write_csv(rows, spec.metric, folder / "results.csv")])
    out["parent"] = parent


def _process(url: str, experiment: str, template: str, work: str, names: list[str], p: int, offsets,
             speed: float, barrier, results) -> None:
    """Run the clients ``names`` as threads, all starting when every process is ready; put what they did."""
    from jaxbp.sweeps import recorder  # noqa: F401  (imported before the start: no import inside the window)

    samples: list = []
    _instrument(samples)
    barrier.wait()
    go = time.time()
    paced = {int(i): t / speed for i, t in offsets.items()} if offsets else None
    # paced client i of P starts i/P of the sweep's duration after the first, as sweeps started at other times
    shift = {name: int(name.removeprefix("client")) / p * max(paced.values()) if paced else 0.0 for name in names}
    outs = [{} for _ in names]
    threads = [threading.Thread(target=_client, args=(url, experiment, Path(template), Path(work) / name, paced,
                                                      go + shift[name], out)) for name, out in zip(names, outs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put({"go": go, "end": time.time(), "samples": samples, "outs": outs})


def run_load(url: str, experiment: str, template: Path, work: Path, p: int, offsets, speed: float,
             processes: int) -> dict:
    """P clients against ``url``; their requests timed, their parents returned."""
    ctx = multiprocessing.get_context("spawn")
    n = min(p, processes)
    barrier, results = ctx.Barrier(n), ctx.Queue()
    names = [f"client{i}" for i in range(p)]
    procs = [ctx.Process(target=_process, args=(url, experiment, str(template), str(work), names[j::n], p, offsets,
                                                speed, barrier, results)) for j in range(n)]
    for proc in procs:
        proc.start()
    parts = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    samples = [s for part in parts for s in part["samples"]]
    window = max(part["end"] for part in parts) - min(part["go"] for part in parts)
    batch = sorted(s for path, s, _ in samples if path == LOG_BATCH)
    every = sorted(s for _, s, _ in samples)
    outs = [o for part in parts for o in part["outs"]]
    return {"P": p, "requests": len(samples), "seconds": window, "rps": len(samples) / window,
            "failed": dict(Counter(f"{status} {path}" for path, _, status in samples if not 0 < status < 400)),
            "log_batch_p50_ms": 1e3 * statistics.median(batch), "log_batch_p95_ms": 1e3 * _p95(batch),
            "all_p95_ms": 1e3 * _p95(every), "errors": [o["error"] for o in outs if "error" in o],
            "parents": [o["parent"] for o in outs if "parent" in o]}


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


# ---------------------------------------------------------------- the store, checked directly


def check_store(store_uri: str, parents: list[str], configs: int, epochs: int, metric: str) -> str | None:
    """None if each parent holds ``configs`` finished children, one per config index, each with ``epochs``
    values of ``metric``; else what is wrong."""
    import sqlalchemy as sa

    query = sa.text(
        "select p.value, i.value, count(m.step) from tags p join runs r on r.run_uuid = p.run_uuid "
        "join tags i on i.run_uuid = r.run_uuid and i.key = 'jaxbp.config_index' "
        "left join metrics m on m.run_uuid = r.run_uuid and m.key = :metric "
        "where p.key = 'mlflow.parentRunId' and r.status = 'FINISHED' and r.lifecycle_stage = 'active' "
        "group by p.value, r.run_uuid, i.value")
    engine = sa.create_engine(store_uri)
    try:
        with engine.connect() as con:
            rows = con.execute(query, {"metric": metric}).all()
    finally:
        engine.dispose()
    by_parent: dict[str, list[tuple[str, int]]] = {}
    for parent, index, count in rows:
        by_parent.setdefault(parent, []).append((index, count))
    for parent in parents:
        children = by_parent.get(parent, [])
        if sorted(int(i) for i, _ in children) != list(range(configs)):
            return f"sweep {parent} holds config indices {sorted(int(i) for i, _ in children)}"
        if any(count != epochs for _, count in children):
            return f"sweep {parent}: a child's {metric} history is not {epochs} epochs long"
    return None


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(folder: Path) -> tuple[str, dict]:
    """A development cluster made by services/postgres/dev-cluster.sh: (store URI, environment with PGPASSFILE)."""
    subprocess.run(["bash", str(DEV_CLUSTER), "init", str(folder), "--port", str(free_port())], check=True,
                   stdout=subprocess.DEVNULL)
    env = dict(line.split("=", 1) for line in (folder / "env").read_text().split("\n") if "=" in line)
    return env["JAXBP_BACKEND_STORE_URI"], {"PGPASSFILE": env["PGPASSFILE"]}


def start_server(data: Path, store_uri: str | None, env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    """``jaxbp server`` on a free loopback port, once it prints that it is ready."""
    port = free_port()
    command = [JAXBP, "server", "--data-dir", str(data), "--port", str(port), "--workers", str(workers)]
    if store_uri:
        command += ["--backend-store-uri", store_uri]
    log = (data.parent / f"{data.name}.log").open("w")
    proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    if "ready" not in line:
        raise SystemExit(f"jaxbp server did not start: see {log.name}")
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # the launcher stops its MLflow server and workers
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------- the run, the table, the plot


def measure(args, work: Path) -> dict:
    from machine import machine_header

    from jaxbp.sweeps.tracking import Tracker

    spec = replayed_spec()
    print(machine_header(), flush=True)
    template = work / "template"
    start = time.perf_counter()
    reused = (template / "spec.toml").exists()
    finished = reuse_template(template) if reused else train_template(template)
    configs, epochs = len(finished), spec.base["epochs"]
    offsets = {str(i): t for i, t in enumerate(finished)}  # record index = position (pending() is by index)
    trained = "reused from --work" if reused else f"trained here in {time.perf_counter() - start:.0f} s"
    print(f"replayed sweep: {SPEC.name} narrowed, {configs} configs × {epochs} epochs ({trained}); its configs "
          f"finished over {max(finished):.1f} s (paced replay: {max(finished) / args.speed:.1f} s per client)\n",
          flush=True)
    results = {"header": machine_header(), "configs": configs, "epochs": epochs, "speed": args.speed,
               "workers": args.workers, "pace_seconds": max(finished), "rows": []}
    for store in args.stores:
        env, store_uri = {}, None
        if store == "postgresql":
            store_uri, env = start_postgres(work / "pg")
        proc, url = start_server(work / f"server-{store}", store_uri, env, args.workers)
        store_uri = store_uri or f"sqlite:///{work / f'server-{store}' / 'mlflow.db'}"
        os.environ.update(env)
        try:
            for load in args.loads:
                for p in args.clients:
                    experiment = f"load {load} P={p}"
                    Tracker(url, experiment)  # made once, before its clients race to make it
                    row = run_load(url, experiment, template, work / f"{store}-{load}-{p}", p,
                                   offsets if load == "paced" else None, args.speed, args.processes)
                    errors = row.pop("errors")
                    problem = _shorten(errors) if errors else check_store(
                        store_uri, row.pop("parents"), configs, epochs, spec.metric)
                    row.update(store=store, load=load, complete=problem is None, problem=problem)
                    results["rows"].append(row)
                    print(f"{store:10} {load:8} P={p:<3} {row['rps']:7.1f} req/s  log_batch p50 "
                          f"{row['log_batch_p50_ms']:7.1f} ms  p95 {row['log_batch_p95_ms']:7.1f} ms  "
                          f"failed {row['failed']}  {'complete' if problem is None else problem}", flush=True)
        finally:
            stop(proc)
            if store == "postgresql":
                subprocess.run(["bash", str(DEV_CLUSTER), "stop", str(work / "pg")], check=False,
                               stdout=subprocess.DEVNULL)
    return results


def _shorten(errors: list[str]) -> str:
    """'3 of the clients gave up: ReadTimeoutError on runs/create ×2, …' from the clients' errors."""
    def cause(error: str) -> str:
        caused = re.search(r"Caused by (\w+)", error)
        endpoint = re.search(r"/mlflow/(\S+?) ", error)
        return f"{caused.group(1) if caused else error[:60]} on {endpoint.group(1) if endpoint else '?'}"

    causes = Counter(cause(e) for e in errors)
    return f"{len(errors)} of the clients gave up: " + ", ".join(f"{c} ×{n}" for c, n in causes.most_common())


def report(results: dict) -> None:
    """The table (Markdown, for the README) and the goal line."""
    print(f"\n{results['header']}\nMLflow server --workers {results['workers']}; paced = the sweep's own pace "
          f"× {results['speed']:g}\n")
    print("| store | load | P | requests/s | log_batch p50 ms | log_batch p95 ms | all p95 ms | requests failed | "
          "every config logged |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results["rows"]:
        print(f"| {r['store']} | {r['load']} | {r['P']} | {r['rps']:.1f} | {r['log_batch_p50_ms']:.1f} | "
              f"{r['log_batch_p95_ms']:.1f} | {r['all_p95_ms']:.1f} | {sum(r['failed'].values())} | "
              f"{'yes' if r['complete'] else 'NO: ' + r['problem']} |")
    for store in ("postgresql", "sqlite"):
        paced = {r["P"]: r for r in results["rows"] if r["store"] == store and r["load"] == "paced"}
        if 1 in paced and GOAL_P in paced:
            ratio = paced[GOAL_P]["log_batch_p95_ms"] / paced[1]["log_batch_p95_ms"]
            verdict = ("met" if ratio <= GOAL_RATIO else "NOT met") if store == "postgresql" else "(no goal)"
            print(f"{store}: paced P={GOAL_P} p95 log_batch = {ratio:.2f}× idle (P=1); goal ≤ {GOAL_RATIO:g}×: "
                  f"{verdict}")


def plot(results: dict, path: Path) -> None:
    """Left: log_batch p95 (p50 dotted) against P, paced; right: requests per second against P, both loads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, rate) = plt.subplots(1, 2, figsize=(11.5, 4.4), layout="constrained")
    for c, store in enumerate(s for s in STORES if any(r["store"] == s for r in results["rows"])):
        rows = {load: sorted((r for r in results["rows"] if r["store"] == store and r["load"] == load),
                             key=lambda r: r["P"]) for load in LOADS}
        if paced := rows["paced"]:
            ps = [r["P"] for r in paced]
            lat.plot(ps, [r["log_batch_p95_ms"] for r in paced], "o-", color=f"C{c}", label=f"{store}: p95")
            lat.plot(ps, [r["log_batch_p50_ms"] for r in paced], "o:", color=f"C{c}", label=f"{store}: p50")
            if store == "postgresql" and paced[0]["P"] == 1:
                lat.axhline(GOAL_RATIO * paced[0]["log_batch_p95_ms"], color="C3", ls="--", lw=1,
                            label=f"goal: p95 ≤ {GOAL_RATIO:g}× idle (PostgreSQL, P = {GOAL_P})")
        for load, style in (("flat out", "s-"), ("paced", "o:")):
            if rows[load]:
                rate.plot([r["P"] for r in rows[load]], [r["rps"] for r in rows[load]], style, color=f"C{c}",
                          label=f"{store}, {load}")
    ps = sorted({r["P"] for r in results["rows"]})
    lat.set(xscale="log", yscale="log", xlabel="P (concurrent sweeps logging)", ylabel="ms",
            title=f"log_batch latency, paced (the sweep's pace × {results['speed']:g})")
    rate.set(xscale="log", xlabel="P (concurrent sweeps logging)", ylabel="MLflow requests per second",
             ylim=(0, None), title="Sustained requests per second")
    for ax in (lat, rate):
        ax.set_xticks(ps, [str(p) for p in ps])
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(f"{results['header']} | mlflow server --workers {results['workers']}", fontsize="small")
    fig.savefig(path, dpi=110)
    path.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"\nplot: {path} (its numbers: {path.with_suffix('.json')}; --replot redraws from them)")


def parse_list(kind, allowed=None):
    def parse(text: str):
        try:
            values = tuple(kind(v.strip()) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
        bad = [v for v in values if (allowed and v not in allowed) or (kind is int and v < 1)]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"unexpected {bad or text!r}; expected {allowed or 'positive integers'}")
        return values

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=parse_list(int), default=CLIENTS, help="P values (default 1,4,16,64)")
    parser.add_argument("--stores", type=parse_list(str, STORES), default=STORES,
                        help="sqlite, postgresql or both (default both)")
    parser.add_argument("--loads", type=parse_list(str, LOADS), default=LOADS,
                        help="'paced', 'flat out' or both (default both)")
    parser.add_argument("--speed", type=float, default=1.0, help="paced replay this many times faster (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="mlflow server worker processes (default 2)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--work", type=Path, help="keep the servers' stores and the trained sweep in this folder "
                        "(its trained sweep is reused next time; default: a temporary folder)")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "server_load.png", help="the figure's path")
    parser.add_argument("--replot", type=Path, help="only redraw the plot from a run's JSON (written beside the plot)")
    args = parser.parse_args(argv)
    if args.replot:
        results = json.loads(args.replot.read_text())
        report(results)
        return plot(results, args.plot)
    if not args.speed > 0 or args.workers < 1 or args.processes < 1:
        parser.error("--speed must be > 0, --workers and --processes ≥ 1")
    if "postgresql" in args.stores and not DEV_CLUSTER.exists():
        parser.error(f"{DEV_CLUSTER} is missing")
    if args.work:
        for old in args.work.glob("*"):  # all but the trained template: fresh stores, fresh spools
            if old.name != "template":
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        results = measure(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="server_load-") as work:
            results = measure(args, Path(work))
    report(results)
    plot(results, args.plot)


if __name__ == "__main__":
    main()
