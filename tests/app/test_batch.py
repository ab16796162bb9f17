"""jaxbp.app.batch and `jaxbp batch`: a queue of tiny xor specs on a real SQLite store — statuses, logs, the
summary, exit statuses, --keep-going, stopping at the first failure, and what --resume does to a finished spec."""

import contextlib
import io
import re

import pytest
from mlflow.tracking import MlflowClient

from jaxbp.app import batch as runner
from jaxbp.app.batch import run_batch
from jaxbp.app.cli import main
from jaxbp.sweeps.run import TrackingUnavailable

TINY = 'name = "{name}"\ndataset = "{dataset}"\n[base]\nsizes = [2, 4, 2]\nepochs = 2\nbatch_size = 8\n' \
       '[sweep]\neta = [0.5, 3.0]\n'
INVALID = 'name = "bad"\ndataset = "xor"\n[sweep]\netaa = [0.5]\n'


def write_specs(folder, **texts):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, text in texts.items():
        (folder / f"{stem}.toml").write_text(text)
    return [folder / f"{stem}.toml" for stem in texts]


def parents(db) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, "tags.`jaxbp.kind` = 'sweep'") if ids else []


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def kept_going(tmp_path_factory):
    """`jaxbp batch a.toml bad.toml c.toml --keep-going` into a fresh store: (exit status, stdout, folder)."""
    tmp = tmp_path_factory.mktemp("batch")
    specs = write_specs(tmp / "specs", a=TINY.format(name="alpha", dataset="xor"), bad=INVALID,
                        c=TINY.format(name="gamma", dataset="xor"))
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("JAXBP_SPOOL", str(tmp / "spool"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        status = main(["batch", *map(str, specs), "--keep-going", "--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                       "--log-dir", str(tmp / "logs")])
    return status, out.getvalue(), tmp


def test_keep_going_runs_the_valid_specs_and_exits_1(kept_going):
    status, out, tmp = kept_going
    assert status == 1
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\[\d/3\] \S+/(\w+)\.toml: (finished|invalid|failed|skipped)",
                                                      out, re.MULTILINE)}
    assert rows == {"a": "finished", "bad": "invalid", "c": "finished"}, out
    assert all(status in out for status in ("finished", "invalid"))  # the summary table names them too
    assert "batch of 3 specs" in out and "2 of 3 specs finished; 1 not: exit status 1" in out
    assert re.search(r"bad\.toml: invalid — unknown axis in \[sweep\] of \S+: 'etaa'; did you mean 'eta'\?", out)
    runs = parents(tmp / "mlflow.db")
    assert sorted(r.data.tags["jaxbp.sweep_status"] for r in runs) == ["finished", "finished"]
    logs = "".join(p.read_text() for p in (tmp / "logs").glob("*.log"))
    assert all(r.info.run_id in logs for r in runs)  # each spec's log names its parent run


def test_each_spec_has_a_log_with_its_table_or_its_error(kept_going):
    _, _, tmp = kept_going
    logs = tmp / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["a.log", "bad.log", "c.log"]
    a = (logs / "a.log").read_text()
    assert "ranked by final validation_accuracy" in a and "eta=0.5" in a and "eta=3" in a
    assert "epoch 2/2" in a and "configs done: 2/2" in a and re.search(r"parent run \w{32} in sqlite:///", a)
    assert "\x1b[" not in a  # plain text, no terminal codes
    bad = (logs / "bad.log").read_text()
    assert "invalid spec" in bad and "'etaa'; did you mean 'eta'?" in bad and len(bad.splitlines()) == 1


def test_without_keep_going_an_invalid_spec_means_nothing_trains(tmp_path):
    specs = write_specs(tmp_path / "specs", a=TINY.format(name="alpha", dataset="xor"), bad=INVALID,
                        c=TINY.format(name="gamma", dataset="xor"))
    entries = run_batch(specs, f"sqlite:///{tmp_path / 'mlflow.db'}", log_dir=tmp_path / "logs")
    assert [e.status for e in entries] == ["skipped", "invalid", "skipped"]
    assert "not run:" in entries[0].message and str(specs[1]) in entries[0].message
    assert entries[0].log is None and not parents(tmp_path / "mlflow.db")  # checked first: no run was started
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["bad.log"]


def test_without_keep_going_the_batch_stops_at_the_first_failure(tmp_path, capsys):
    specs = write_specs(tmp_path / "specs", broken=TINY.format(name="broken", dataset="no-such-dataset"),
                        a=TINY.format(name="alpha", dataset="xor"))
    status = main(["batch", *map(str, specs), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                   "--log-dir", str(tmp_path / "logs")])
    out = capsys.readouterr().out
    assert status == 1 and "broken.toml: failed" in out and "a.toml: skipped" in out
    assert "failed: " in (tmp_path / "logs" / "broken.log").read_text()
    assert not (tmp_path / "logs" / "a.log").exists()
    assert not parents(tmp_path / "mlflow.db")


def test_a_tracking_failure_fails_its_spec_only_with_keep_going(tmp_path, monkeypatch):
    calls = []

    def flaky(spec, uri, **kwargs):
        calls.append((spec.name, kwargs["resume"]))
        raise TrackingUnavailable("tracking store http://x stopped answering; 2 finished configs are kept")

    monkeypatch.setattr(runner, "run_sweep", flaky)
    specs = write_specs(tmp_path / "specs", a=TINY.format(name="alpha", dataset="xor"),
                        b=TINY.format(name="beta", dataset="xor"))
    entries = run_batch(specs, f"sqlite:///{tmp_path / 'mlflow.db'}", keep_going=True, resume=True,
                        log_dir=tmp_path / "logs")
    assert [e.status for e in entries] == ["failed", "failed"] and calls == [("alpha", True), ("beta", True)]
    assert entries[0].message.startswith("tracking store http://x stopped answering")
    assert "stopped answering" in entries[1].log.read_text()


def test_resume_of_a_finished_spec_does_not_retrain_it(kept_going):
    _, _, tmp = kept_going
    before = {r.info.run_id for r in parents(tmp / "mlflow.db")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAXBP_SPOOL", str(tmp / "spool"))
        (entry,) = run_batch([tmp / "specs" / "a.toml"], f"sqlite:///{tmp / 'mlflow.db'}", resume=True,
                             log_dir=tmp / "logs-resume")
    assert entry.status == "finished" and entry.metric == "validation_accuracy" and entry.best is not None
    assert entry.parent_run_id in before  # the finished sweep is returned as it is
    assert len(parents(tmp / "mlflow.db")) == 2 and "nothing to resume" in entry.log.read_text()


def test_specs_with_the_same_stem_get_their_own_logs(tmp_path):
    specs = [*write_specs(tmp_path / "x", s=INVALID), *write_specs(tmp_path / "y", s="not toml =")]
    entries = run_batch(specs, f"sqlite:///{tmp_path / 'mlflow.db'}", keep_going=True, log_dir=tmp_path / "logs")
    assert [e.status for e in entries] == ["invalid", "invalid"]
    assert [e.log.name for e in entries] == ["s.log", "s-2.log"] and "is not valid TOML" in entries[1].message


def test_an_unreachable_store_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = write_specs(tmp_path, a=TINY.format(name="alpha", dataset="xor"))
    assert main(["batch", str(specs[0]), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxbp: error: tracking server http://127.0.0.1:9 is unreachable")
    assert len(err.splitlines()) == 1 and not (tmp_path / "batch-logs").exists()
