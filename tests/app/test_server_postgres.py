"""The team's tracking server on a real PostgreSQL (services/postgres/dev-cluster.sh, the ``postgres`` fixture):
a sweep through ``jaxbp server`` lands in PostgreSQL (read back with SQLAlchemy) and its artifacts in
--artifacts-destination; unusable store URIs are refused in one line without their password; a pg_dump/pg_restore
round trip brings lost runs back; a SQLite store moved with ``jaxbp migrate-store`` is equal run for run."""

import importlib.util
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

import postgres as postgres_helpers
from helpers import free_port
from jaxbp.app.cli import main as cli
from jaxbp.app.server import main
from postgres import JAXBP, Launcher, require_postgres, snapshot

pytestmark = [pytest.mark.server, pytest.mark.postgres]

SPEC = ('name = "{name}"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 3\nbatch_size = 8\n'
        '[sweep]\neta = [0.5, 1.0, 3.0]\n')
ETAS, EPOCHS = 3, 3


def sweep(name: str, tracking_uri: str, folder: Path, env: dict) -> subprocess.CompletedProcess:
    """``jaxbp sweep`` of a tiny spec (3 configs of XOR, 3 epochs) into ``tracking_uri``; it must succeed."""
    spec = folder / f"{name}.toml"
    spec.write_text(SPEC.format(name=name))
    done = subprocess.run([JAXBP, "sweep", str(spec), "--tracking-uri", tracking_uri], capture_output=True, text=True,
                          env={**env, "JAXBP_SPOOL": str(folder / "spool")}, cwd=folder, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """`jaxbp server` on the cluster's database mlflow, its password from PGPASSFILE, artifacts served from a
    folder of its own."""
    folder = tmp_path_factory.mktemp("pg-server")
    launcher = Launcher(["--backend-store-uri", postgres.uri(), "--artifacts-destination", str(folder / "artifacts"),
                         "--data-dir", str(folder / "data")], postgres.env, folder / "server.log")
    launcher.artifacts = folder / "artifacts"
    yield launcher
    assert launcher.stopped_cleanly()


@pytest.fixture(scope="module")
def swept(server, postgres, tmp_path_factory):
    """A sweep logged through the server: the id of its parent run."""
    folder = tmp_path_factory.mktemp("pg-sweep")
    server.sweep_output = sweep("team-pg", server.url, folder, postgres.env).stdout
    with postgres.engine().connect() as db:
        return db.execute(sa.text("SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                                  "WHERE t.key = 'jaxbp.kind' AND t.value = 'sweep'")).scalar_one()


def test_the_sweep_points_at_the_servers_own_ui_and_prints_no_mlflow_lines(server, swept):
    out = server.sweep_output
    assert f"parent run {swept} in {server.url}" in out and "browse it: open\n" in out  # no `jaxbp ui` for a server
    assert f"\n{server.url}/#/experiments/" in out and f"compare view: {server.url}/#/compare-runs" in out
    assert "View run" not in out and "View experiment" not in out  # MLflow's own links, one per run, are off


def children(db, parent: str) -> dict[str, str]:
    """{config index: run id} of the parent's children, read from PostgreSQL's tables."""
    rows = db.execute(sa.text(
        "SELECT i.value, i.run_uuid FROM tags p JOIN tags i ON i.run_uuid = p.run_uuid WHERE p.key = "
        "'mlflow.parentRunId' AND p.value = :parent AND i.key = 'jaxbp.config_index'"), {"parent": parent})
    return dict(rows.all())


def test_a_sweep_through_the_server_is_in_postgres_and_its_artifacts_in_the_destination(server, swept, postgres):
    assert f"store {postgres.uri()}, artifacts {server.artifacts}" in server.printed
    with postgres.engine().connect() as db:
        configs = children(db, swept)
        rows = db.execute(sa.text("SELECT run_uuid, status, artifact_uri FROM runs")).all()
        epochs = db.execute(sa.text("SELECT run_uuid, count(*) FROM metrics WHERE key = 'validation_accuracy' "
                                    "GROUP BY run_uuid")).all()
    assert sorted(configs) == [str(i) for i in range(ETAS)]  # every config once
    assert len(rows) == ETAS + 1 and all(status == "FINISHED" for _, status, _ in rows)
    assert all(uri.startswith("mlflow-artifacts:") for _, _, uri in rows)  # served by the server
    assert dict(epochs) == dict.fromkeys(configs.values(), EPOCHS)  # each child's whole history
    results = list(server.artifacts.rglob("results.csv"))
    assert len(results) == 1 and swept in str(results[0])
    assert len(results[0].read_text().splitlines()) == ETAS + 1
    assert len(list(server.artifacts.rglob("spec.toml"))) == 1


@pytest.mark.parametrize("case", ["closed port", "wrong password", "no PGPASSFILE", "no database", "no driver"])
def test_an_unusable_postgres_uri_is_one_line_exit_2_and_nothing_created(case, postgres, tmp_path, capsys,
                                                                          monkeypatch):
    if case == "no driver" and importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here: a driverless postgresql:// URI is then valid")
    secret = "s3cret-Pw"
    port = free_port() if case == "closed port" else postgres.port
    uri, expected = {
        "closed port": (f"postgresql+psycopg://mlflow:{secret}@127.0.0.1:{port}/mlflow", "Connection refused"),
        "wrong password": (f"postgresql+psycopg://mlflow:{secret}@127.0.0.1:{port}/mlflow",
                           'password authentication failed for user "mlflow"'),
        "no PGPASSFILE": (postgres.uri(), "no password supplied (set PGPASSFILE"),
        "no database": (postgres.uri("nowhere"), 'database "nowhere" does not exist'),
        "no driver": (f"postgresql://mlflow:{secret}@127.0.0.1:{port}/mlflow", "write postgresql+psycopg://"),
    }[case]
    if case == "no database":
        monkeypatch.setenv("PGPASSFILE", str(postgres.pgpass))
    else:
        monkeypatch.delenv("PGPASSFILE", raising=False)
    assert main(["--data-dir", str(tmp_path / "d"), "--backend-store-uri", uri, "--port", str(free_port())]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("serve: error: ") and len(captured.err.strip().splitlines()) == 1
    assert expected in captured.err and secret not in captured.err and captured.out == ""
    if case != "no driver":
        assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in captured.err
    if secret in uri:
        assert "mlflow:***@127.0.0.1" in captured.err
    assert not (tmp_path / "d").exists()


def test_a_dump_restores_the_runs_that_were_lost(server, swept, postgres, tmp_path):
    client = MlflowClient(server.url)
    with postgres.engine().connect() as db:
        before = children(db, swept)
    history = [(m.step, m.value) for m in client.get_metric_history(before["1"], "validation_accuracy")]
    postgres.dump(tmp_path / "mlflow.dump")
    assert (tmp_path / "mlflow.dump").stat().st_size > 0
    with postgres.engine().begin() as db:  # the accident: every run and what hangs on them is gone
        db.execute(sa.text("TRUNCATE runs CASCADE"))
    experiment = client.get_experiment_by_name("team-pg").experiment_id
    assert client.search_runs([experiment], run_view_type=ViewType.ALL) == []
    postgres.restore(tmp_path / "mlflow.dump")
    with postgres.engine().connect() as db:
        assert children(db, swept) == before
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{swept}'")  # and the server sees them
    assert sorted(r.info.run_id for r in runs) == sorted(before.values())
    assert [(m.step, m.value) for m in client.get_metric_history(before["1"], "validation_accuracy")] == history


def test_a_sqlite_store_moved_to_postgres_is_equal_run_for_run(postgres, tmp_path, monkeypatch, capsys):
    sweep("moved", f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, postgres.env)
    target = postgres.create_database("moved")
    command = [JAXBP, "migrate-store", str(tmp_path / "mlflow.db"), target]
    done = subprocess.run(command, capture_output=True, text=True, env=postgres.env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"moved 2 experiments, {ETAS + 1} runs, ") and "artifacts stay where" in done.stdout

    monkeypatch.setenv("PGPASSFILE", str(postgres.pgpass))
    before = snapshot(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), "moved")
    after = snapshot(MlflowClient(target), "moved")
    assert after == before and len(after[1]) == ETAS + 1
    assert all(Path(info["artifact_uri"].removeprefix("file://")).is_dir() for info, *_ in after[1])  # still there
    assert sum(len(h) for *_, histories in after[1] for h in histories.values()) > ETAS * EPOCHS

    assert cli(command[1:]) == 2  # once more: refused, nothing touched
    again = capsys.readouterr()
    assert again.out == "" and len(again.err.strip().splitlines()) == 1
    assert f"already holds data ({ETAS + 1} rows in runs" in again.err
    assert snapshot(MlflowClient(target), "moved") == before

    # the server on the moved store, its password in the URI this time: never printed, and it lists the same
    monkeypatch.delenv("PGPASSFILE")
    launcher = Launcher(["--backend-store-uri", postgres.uri("moved", password=True), "--data-dir",
                         str(tmp_path / "data")], {k: v for k, v in postgres.env.items() if k != "PGPASSFILE"},
                        tmp_path / "server.log")
    try:
        assert f"store postgresql+psycopg://mlflow:***@127.0.0.1:{postgres.port}/moved" in launcher.printed
        assert postgres.password not in launcher.printed
        client = MlflowClient(launcher.url)
        assert client.get_experiment_by_name("moved").experiment_id == before[0]["id"]
        listed = client.search_runs([before[0]["id"]], run_view_type=ViewType.ALL)
        assert sorted(r.info.run_id for r in listed) == [info["run_id"] for info, *_ in before[1]]
        new = client.create_experiment("after-the-move")  # the id sequence was moved past the copied ids
        assert int(new) > max(int(e.experiment_id) for e in client.search_experiments() if e.name != "after-the-move")
    finally:
        assert launcher.stopped_cleanly()
    assert postgres.password not in (tmp_path / "server.log").read_text()


def test_the_script_refuses_a_busy_port_and_a_used_folder_in_one_line(postgres, tmp_path):
    used = postgres.script("init", str(postgres.folder), "--port", str(free_port()), check=False)
    assert used.returncode == 2 and used.stderr.strip().endswith("is not an empty folder: choose a new one")
    busy = postgres.script("init", str(tmp_path / "c"), "--port", str(postgres.port), check=False)
    assert busy.returncode == 2 and len(busy.stderr.strip().splitlines()) == 1
    assert f"port {postgres.port} on 127.0.0.1 is already in use" in busy.stderr and not (tmp_path / "c").exists()
    assert postgres.running()  # the cluster itself is untouched


def test_without_postgresql_its_tests_are_skipped_naming_the_package_and_fail_under_ci(monkeypatch):
    monkeypatch.setattr(postgres_helpers, "bindir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs Debian's postgresql .*apt-get install postgresql"):
        require_postgres()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: needs Debian's postgresql"):
        require_postgres()
