"""The team's server (jaxbp server on PostgreSQL) under load and faults, with real processes throughout: P = 4
concurrent `jaxbp sweep`s plus one `--executor ray` sweep with 2 workers; the tracking server restarted mid-sweep
(SIGTERM, then SIGKILL); PostgreSQL restarted mid-sweep; the artifact disk full. In every case each config of
each sweep ends up logged exactly once with its whole metric history (read from PostgreSQL itself), after at most
one `--resume` that the sweep asked for in one line."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpers import cannot
from postgres import JAXBP, Launcher

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.slow]

# 9 configs in 3 groups (one per width): the first group is logged while the others still train
SPEC = ('name = "{name}"\ndataset = "digits"\n[base]\nsizes = [64, 8, 10]\nepochs = 3\nbatch_size = 20\n'
        '[sweep]\neta = [0.5, 1.0, 2.0]\nhidden = [[6], [8], [10]]\n')
LOGGED = sa.text(
    "select p.value, i.value, count(m.step) from runs r "
    "join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId' "
    "join tags i on i.run_uuid = r.run_uuid and i.key = 'jaxbp.config_index' "
    "left join metrics m on m.run_uuid = r.run_uuid and m.key = 'validation_accuracy' "
    "where r.status = 'FINISHED' and r.lifecycle_stage = 'active' group by p.value, r.run_uuid, i.value")


def logged(cluster, database: str) -> dict[str, list[tuple[int, int]]]:
    """{parent run id: sorted [(config index, epochs of validation_accuracy)]} of the finished, active children
    in ``database``, read with SQL."""
    engine = cluster.engine(database)
    try:
        with engine.connect() as con:
            rows = con.execute(LOGGED).all()
    finally:
        engine.dispose()
    out: dict[str, list[tuple[int, int]]] = {}
    for parent, index, epochs in rows:
        out.setdefault(parent, []).append((int(index), epochs))
    return {parent: sorted(children) for parent, children in out.items()}


def each_once(cluster, database: str, sweeps: int, configs: int, epochs: int) -> None:
    """``sweeps`` parents, each with configs 0..configs-1 exactly once, each with ``epochs`` epochs logged."""
    found = logged(cluster, database)
    assert len(found) == sweeps, found
    for children in found.values():
        assert children == [(i, epochs) for i in range(configs)], children


def sweep_env(tmp_path: Path, cluster) -> dict:
    return {**cluster.env, "JAXBP_SPOOL": str(tmp_path / "spool"), "JAXBP_CHUNK": "off",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def server(cluster, database: str, tmp_path: Path, port: int | None = None) -> Launcher:
    return Launcher(["--data-dir", str(tmp_path / "server"), "--backend-store-uri", cluster.uri(database)],
                    cluster.env, tmp_path / f"server-{time.monotonic_ns()}.log", port=port)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it at once (the launcher, the MLflow server in its own session, its
    workers), as a power cut would, or systemd's default KillMode=control-group."""
    family = [pid]
    for member in family:  # grows while it is walked: breadth first
        for children in Path(f"/proc/{member}/task").glob("*/children"):
            family += [int(child) for child in children.read_text().split()]
    for member in family:
        os.kill(member, signal.SIGKILL)


def wait_for_a_child(cluster, database: str, sweep: subprocess.Popen, within: float = 240) -> None:
    deadline = time.monotonic() + within
    while not logged(cluster, database):
        assert sweep.poll() is None and time.monotonic() < deadline, "the sweep ended before the fault"
        time.sleep(0.2)


def finish_or_resume(sweep: subprocess.Popen, args: list[str], env: dict) -> str:
    """The sweep ends with 0, or with 1 and its one-line --resume message, after which --resume ends with 0."""
    out, _ = sweep.communicate(timeout=400)
    if sweep.returncode == 0:
        return "finished"
    last = out.strip().splitlines()[-1]
    assert sweep.returncode == 1 and "--resume" in last and "Traceback" not in out, out[-3000:]
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    return last


@pytest.mark.ray
def test_four_sweeps_and_a_ray_sweep_at_once_log_every_config_once(postgres, tmp_path):
    database = "load"
    postgres.create_database(database)
    team = server(postgres, database, tmp_path)
    try:
        env, sweeps = sweep_env(tmp_path, postgres), []
        for name in ("alice", "bob", "carol", "dave", "ray"):
            spec = tmp_path / f"{name}.toml"
            spec.write_text(f'name = "{name}"\ndataset = "digits"\n[base]\nsizes = [64, 16, 10]\nepochs = 3\n'
                            'batch_size = 20\n[sweep]\neta = [0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0]\n'
                            'hidden = [[12], [16]]\n')  # 16 configs in 2 groups: one per Ray worker
            ray = ["--executor", "ray"] if name == "ray" else []
            sweeps.append(subprocess.Popen([JAXBP, "sweep", str(spec), "--tracking-uri", team.url, *ray], env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for sweep in sweeps:
            out, _ = sweep.communicate(timeout=600)
            assert sweep.returncode == 0, out[-3000:]
    finally:
        assert team.stopped_cleanly()
    each_once(postgres, database, sweeps=5, configs=16, epochs=3)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_tracking_server_restarted_mid_sweep(postgres, tmp_path, how):
    database = f"restart_{how.lower()}"
    postgres.create_database(database)
    spec, env = tmp_path / "restart.toml", sweep_env(tmp_path, postgres)
    spec.write_text(SPEC.format(name="restart"))
    team = server(postgres, database, tmp_path)
    args = [JAXBP, "sweep", str(spec), "--tracking-uri", team.url]
    sweep = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_a_child(postgres, database, sweep)
    if how == "SIGTERM":
        assert team.stopped_cleanly()
    else:
        kill_tree(team.proc.pid)
        team.stop()
    team = server(postgres, database, tmp_path, port=team.port)  # back on its port, as systemd restarts it
    try:
        finish_or_resume(sweep, args, env)
    finally:
        assert team.stopped_cleanly()
    each_once(postgres, database, sweeps=1, configs=9, epochs=3)


def test_postgres_restarted_mid_sweep(postgres, tmp_path):
    database = "pgrestart"
    postgres.create_database(database)
    spec, env = tmp_path / "pg.toml", sweep_env(tmp_path, postgres)
    spec.write_text(SPEC.format(name="pgrestart"))
    team = server(postgres, database, tmp_path)
    try:
        args = [JAXBP, "sweep", str(spec), "--tracking-uri", team.url]
        sweep = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_a_child(postgres, database, sweep)
        postgres.restart("fast")  # every connection of the server's pool is cut
        finish_or_resume(sweep, args, env)
    finally:
        assert team.stopped_cleanly()
    each_once(postgres, database, sweeps=1, configs=9, epochs=3)


def mount_small(folder: Path, size: str) -> None:
    """A size-capped tmpfs at ``folder`` (or, with it mounted, its new size): root only; skipped otherwise, and a
    failure under CI=true, where every test runs."""
    options = f"size={size}" if not os.path.ismount(folder) else f"remount,size={size}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        cannot(f"needs root to mount a size-capped tmpfs ({done.stderr.strip()})")


def test_a_full_artifact_disk_keeps_the_results_until_there_is_room(postgres, tmp_path):
    database, artifacts = "fulldisk", tmp_path / "artifacts"
    postgres.create_database(database)
    artifacts.mkdir()
    mount_small(artifacts, "64k")  # room for one checkpoint of [64, 100, 10] (~30 KB), not for six
    try:
        spec, env = tmp_path / "full.toml", sweep_env(tmp_path, postgres)
        spec.write_text('name = "full"\ndataset = "digits"\n[base]\nsizes = [64, 100, 10]\nepochs = 2\n'
                        'batch_size = 20\n[sweep]\neta = [0.1, 0.3, 1.0, 2.0, 3.0, 5.0]\n')
        team = Launcher(["--data-dir", str(tmp_path / "server"), "--backend-store-uri", postgres.uri(database),
                         "--artifacts-destination", str(artifacts)], postgres.env, tmp_path / "server.log")
        try:
            args = [JAXBP, "sweep", str(spec), "--tracking-uri", team.url]
            full = subprocess.run(args, env=env, capture_output=True, text=True, timeout=400)
            lines = full.stdout.strip().splitlines()
            assert full.returncode == 1 and "Traceback" not in full.stdout + full.stderr
            assert "is up but failed storing an artifact" in lines[-1] and "artifact storage full" in lines[-1]
            assert "--resume once it is fixed" in lines[-1]
            kept = list((tmp_path / "spool").glob("*/*/record.json"))
            assert kept, "the configs that could not be logged are kept in the spool"
            mount_small(artifacts, "16m")  # room again
            resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=400)
            assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        finally:
            assert team.stopped_cleanly()
        each_once(postgres, database, sweeps=1, configs=6, epochs=2)
        assert len(list(artifacts.rglob("checkpoint.msgpack"))) == 6  # one per child: none lost, none twice
    finally:
        # a process still holding a file there (busy) must not leave the mount behind: detach it lazily then
        for umount in (["umount"], ["umount", "--lazy"]):
            if os.path.ismount(artifacts):
                subprocess.run([*umount, str(artifacts)], check=False, capture_output=True)
