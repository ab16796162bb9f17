"""A real PostgreSQL for the tests, started the way a developer starts one: services/postgres/dev-cluster.sh in a
temporary folder on a free port (the ``postgres`` fixture of conftest.py gives each test module, on each xdist
worker, a cluster of its own), and ``jaxbp server`` launched on it.

What it is for: ``Cluster`` (init, start, stop, restart, status, dump, restore through the script; its store URI,
the environment with ``PGPASSFILE``, a SQLAlchemy engine to look inside, more databases) and ``Launcher`` (a
``jaxbp server`` process, waited for until it prints that it is ready, stopped with SIGTERM).
``snapshot`` is an MLflow experiment as plain data, to compare two stores after ``jaxbp migrate-store``.
What it is not: no fixture (see conftest.py), no assertions about MLflow (see the test modules).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from helpers import free_port, listening, require_package

SCRIPT = Path(__file__).resolve().parents[1] / "services" / "postgres" / "dev-cluster.sh"
JAXBP = str(Path(sys.executable).with_name("jaxbp"))


def bindir() -> Path | None:
    """PostgreSQL's server binaries, found as the script finds them: ``pg_config --bindir``, else the newest
    /usr/lib/postgresql/*/bin; None if there is no initdb."""
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(found) / "initdb").exists():
            return Path(found)
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in
                      p.parent.name.split(".") if x.isdigit()])
    return versions[-1] if versions and (versions[-1] / "initdb").exists() else None


def require_postgres() -> Path:
    """The binaries' folder; skip the calling test naming Debian's ``postgresql`` where they are missing (a
    failure under CI=true, see ``helpers.require_package``)."""
    found = bindir()
    require_package(str(found / "initdb") if found else "/usr/lib/postgresql/<version>/bin/initdb", "postgresql")
    return found


class Cluster:
    """One dev-cluster.sh cluster: role and database ``mlflow``, its password in ``folder/pgpass``."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = Path(folder), port
        self.pgpass = self.folder / "pgpass"

    @classmethod
    def init(cls, port: int | None = None) -> Cluster:
        """A new cluster, running, in a fresh folder under the system's temporary folder (short, so that the unix
        socket's path fits; reachable by the postgres user when the tests run as root)."""
        folder = Path(tempfile.mkdtemp(prefix="jaxbp-pg-"))
        cluster = cls(folder, port or free_port())
        try:
            cluster.script("init", str(folder), "--port", str(cluster.port))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cluster

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """dev-cluster.sh with ``args``; with ``check``, a failure raises with its output."""
        done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=180)
        if check and done.returncode != 0:
            raise RuntimeError(f"dev-cluster.sh {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
        return done

    def start(self) -> None:
        self.script("start", str(self.folder))

    def stop(self, mode: str = "fast") -> None:
        self.script("stop", str(self.folder), "--mode", mode)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self.script("status", str(self.folder), check=False).returncode == 0

    def dump(self, file: Path) -> None:
        self.script("dump", str(self.folder), str(file))

    def restore(self, file: Path) -> None:
        self.script("restore", str(self.folder), str(file))

    @property
    def password(self) -> str:
        """Role mlflow's password (for tests that put it into a URI on purpose)."""
        return self.pgpass.read_text().splitlines()[0].rsplit(":", 1)[1]

    def uri(self, database: str = "mlflow", *, password: bool = False) -> str:
        """The store URI of ``database``; the password is read from PGPASSFILE unless ``password``."""
        secret = f":{self.password}" if password else ""
        return f"postgresql+psycopg://mlflow{secret}@127.0.0.1:{self.port}/{database}"

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with ``PGPASSFILE``, for subprocesses (jaxbp server, jaxbp migrate-store)."""
        return {**os.environ, "PGPASSFILE": str(self.pgpass)}

    def engine(self, database: str = "mlflow") -> sa.Engine:
        """A SQLAlchemy engine on ``database`` as role mlflow (the password from the cluster's pgpass)."""
        return sa.create_engine(self.uri(database), connect_args={"passfile": str(self.pgpass)})

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` owned by mlflow (created by the cluster's superuser); its URI."""
        owner = self.folder.joinpath("data").owner()
        psql = [str(require_postgres() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.folder),
                "-p", str(self.port), "-d", "postgres", "-c", f'CREATE DATABASE "{name}" OWNER mlflow']
        as_owner = ["runuser", "-u", owner, "--"] if os.geteuid() == 0 and owner != "root" else []
        subprocess.run([*as_owner, *psql], check=True, capture_output=True, cwd=self.folder, timeout=60)
        return self.uri(name)

    def close(self) -> None:
        """Stop the cluster (immediate: nothing to keep) and remove its folder."""
        if self.folder.exists():
            self.script("stop", str(self.folder), "--mode", "immediate", check=False)
            shutil.rmtree(self.folder, ignore_errors=True)


class Launcher:
    """A ``jaxbp server`` process with ``args`` (on ``port``, else a free one), waited for until it is ready;
    ``printed`` is what it told clients."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, timeout: float = 180, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen([JAXBP, "server", "--port", str(self.port), *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        lines, deadline = [], time.monotonic() + timeout
        while not any("ready" in line for line in lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"jaxbp server did not get ready: {''.join(lines)}{log.read_text()[-2000:]}")
            lines.append(self.proc.stdout.readline())
        lines.append(self.proc.stdout.readline())  # the line that tells clients what to use
        self.printed = "".join(lines)

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; its exit status (it stops its mlflow server and workers with it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def stopped_cleanly(self) -> bool:
        return self.stop() == 0 and not listening(self.port)


def snapshot(client: MlflowClient, experiment: str) -> tuple[dict, list]:
    """An experiment and its runs as plain data: run info, params, tags, every metric's full history (each value
    as its repr, so that NaN compares equal)."""
    exp = client.get_experiment_by_name(experiment)
    runs = []
    for run in sorted(client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL), key=lambda r: r.info.run_id):
        history = client.get_metric_history
        histories = {key: sorted((m.step, m.timestamp, repr(m.value)) for m in history(run.info.run_id, key))
                     for key in run.data.metrics}  # repr: NaN equals NaN
        info = {k: getattr(run.info, k) for k in ("run_id", "run_name", "status", "start_time", "end_time",
                                                  "artifact_uri", "lifecycle_stage", "experiment_id")}
        runs.append((info, run.data.params, run.data.tags, histories))
    return {"id": exp.experiment_id, "artifacts": exp.artifact_location, "tags": exp.tags}, runs
