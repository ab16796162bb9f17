"""jaxbp.app.migrate without PostgreSQL (SQLite into SQLite; the move into PostgreSQL is in
test_server_postgres.py): the copy equals its source run for run and takes new experiments afterwards; a missing
source, one that is not an MLflow store or at another schema revision, a target that already holds runs and the
same store twice are refused in one line with exit status 2, nothing created."""

import os
import shutil
import sqlite3

import mlflow
import pytest
from alembic.script import ScriptDirectory
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.tracking import MlflowClient

from jaxbp.app.cli import main
from jaxbp.app.migrate import head_revision
from postgres import snapshot


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A SQLite MLflow store: an experiment with a parent run, two children with metric histories (one NaN),
    params and tags, and a deleted run."""
    db = tmp_path_factory.mktemp("source") / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("team", artifact_location=str(db.parent / "mlruns"), tags={"kind": "sweeps"})
    parent = client.create_run(exp, run_name="sweep").info.run_id
    for i in range(2):
        child = client.create_run(exp, run_name=f"config-{i}", tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_batch(child, metrics=[Metric("cost", 1.0 / (step + 1 + i), 1000 + step, step) for step in range(5)]
                         + [Metric("gap", float("nan"), 2000, 0)], params=[Param("eta", str(0.5 * (i + 1)))],
                         tags=[RunTag("status", "finished")])
        client.set_terminated(child)
    client.delete_run(client.create_run(exp, run_name="abandoned").info.run_id)
    client.set_terminated(parent)
    return db


def test_a_sqlite_store_copied_into_another_is_equal_and_takes_new_experiments(source, tmp_path, capsys):
    target = f"sqlite:///{tmp_path / 'moved.db'}"
    assert main(["migrate-store", str(source), target]) == 0
    out = capsys.readouterr().out
    assert out.startswith("moved 2 experiments, 4 runs, 2 params, 12 metric values") and "artifacts stay" in out
    before, after = snapshot(MlflowClient(f"sqlite:///{source}"), "team"), snapshot(MlflowClient(target), "team")
    assert after == before and len(after[1]) == 4
    assert any(info["lifecycle_stage"] == "deleted" for info, *_ in after[1])
    copied = MlflowClient(target)
    new = copied.create_experiment("next")
    assert int(new) > int(before[0]["id"])
    assert copied.search_experiments(view_type=ViewType.ALL)  # the store is usable as it is


def _not_mlflow(path):
    with sqlite3.connect(path) as con:
        con.execute("create table notes (x text)")


def _older(path):
    script = ScriptDirectory(os.path.join(os.path.dirname(mlflow.__file__), "store", "db_migrations"))
    with sqlite3.connect(path) as con:
        con.execute("update alembic_version set version_num = ?", (script.get_revision(head_revision()).down_revision,))


@pytest.mark.parametrize("case,expected", [
    ("missing source", "no SQLite store at"),
    ("not an MLflow store", "is not an MLflow tracking store (it has no alembic_version table)"),
    ("older schema", "run `mlflow db upgrade sqlite:///"),
    ("target holds runs", "already holds data (4 rows in runs"),
    ("same store", "SRC and DST are the same store"),
    ("no target folder", "folder /no/such/folder does not exist"),
])
def test_refusals_are_one_line_exit_2_and_nothing_created(case, expected, source, tmp_path, capsys):
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    if case != "missing source":
        shutil.copy(source, src)
    if case == "not an MLflow store":
        src.unlink()
        _not_mlflow(src)
    if case == "older schema":
        _older(src)
    if case == "target holds runs":
        shutil.copy(source, dst)
    target = {"same store": f"sqlite:///{src}", "no target folder": "sqlite:////no/such/folder/m.db"}.get(
        case, f"sqlite:///{dst}")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert main(["migrate-store", f"sqlite:///{src}", target]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("jaxbp: error: ") and len(captured.err.strip().splitlines()) == 1
    assert expected in captured.err and captured.out == ""
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing made, nothing touched
