"""The command line: jaxbp gradcheck's table and exit codes; bad input is one line and exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import without_jax_cache
from jaxbp.app.cli import main

pytestmark = pytest.mark.x64

JAXBP = str(Path(sys.executable).with_name("jaxbp"))


def test_gradcheck_passes_and_prints_a_row_per_layer(capsys):
    assert main(["gradcheck", "--sizes", "9,7,1,3", "--activation", "tanh", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "7×9" in out and "1×7" in out and "3×1" in out and "all checks passed" in out


def test_gradcheck_on_a_dataset_batch(capsys):
    assert main(["gradcheck", "--sizes", "64,10,10", "--dataset", "digits", "--batch-size", "8"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    assert main(["gradcheck", "--sizes", "784,10,10", "--dataset", "digits"]) == 2
    assert "sizes[0]=784 does not match" in capsys.readouterr().err
    assert main(["gradcheck", "--dataset", "digits"]) == 0  # the sizes follow the dataset: [64, 30, 10]
    assert "sizes [64, 30, 10]" in capsys.readouterr().out


def test_gradcheck_fails_with_status_1_when_a_tolerance_is_exceeded(capsys):
    # float32 finite differences cannot meet 1e-12: the exit status must say so
    assert main(["gradcheck", "--sizes", "6,5,3", "--dtype", "float32", "--fd-rtol", "1e-12"]) == 1
    assert "some checks exceed their tolerance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [(["--sizes", "784"], "sizes needs at least 2 layers"),
     (["--sizes", "5,0,2"], "sizes must be positive integers"),
     (["--sizes", "5,x"], "--sizes must be layer widths such as 784,30,10, got '5,x'"),
     (["--activation", "sigmod"], "unknown activation 'sigmod'; expected one of: sigmoid"),
     (["--cost", "mse"], "unknown cost 'mse'; expected one of: quadratic"),
     (["--init", "xavier"], "unknown init scheme 'xavier'"),
     (["--cost", "cross_entropy", "--activation", "tanh"], "cost cross_entropy needs outputs in (0, 1)"),
     (["--dtype", "int8"], "--dtype must be one of: float64, float32"),
     (["--batch-size", "0"], "--batch-size"),
     (["--rtol", "inf"], "--rtol must be a finite number > 0, got inf"),
     (["--fd-rtol", "nan"], "--fd-rtol must be a finite number > 0, got nan"),
     (["--rtol", "0"], "--rtol must be a finite number > 0, got 0.0"),
     (["--frobnicate"], "No such option: --frobnicate")],
)
def test_bad_input_is_one_line_and_status_2(args, message, capsys):
    assert main(["gradcheck", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_installed_command_help_and_bad_input():
    done = subprocess.run([JAXBP, "gradcheck", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--sizes" in done.stdout and "angel" in done.stdout
    bad = subprocess.run([JAXBP, "gradcheck", "--activation", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("jaxbp: error: unknown activation 'nope'")
    assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_train_json_checkpoint_and_evaluate(tmp_path, capsys):
    ckpt = tmp_path / "runs" / "digits.msgpack"
    assert main(["train", "--epochs", "2", "--eta", "2.5", "--json", "--checkpoint", str(ckpt)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "finished" and summary["epochs_run"] == 2
    assert summary["config"]["eta"] == 2.5 and summary["config"]["sizes"] == [64, 30, 10]
    assert "digits 64-30-10" in captured.err and ckpt.exists()  # the progress bar and table go to stderr
    assert main(["evaluate", str(ckpt), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["splits"]["test"]["accuracy"] == pytest.approx(summary["final"]["test_accuracy"])
    assert evaluated["splits"]["test"]["examples"] == 360


def test_train_table_without_json(capsys):
    assert main(["train", "--dataset", "xor", "--epochs", "3", "--activation", "tanh", "--output-activation",
                 "softmax", "--cost", "log_likelihood", "--eta", "0.5", "--sizes", "2,8,2"]) == 0
    out = capsys.readouterr().out
    assert "xor: tanh/log_likelihood" in out and "finished 3 epochs" in out


def test_train_reports_divergence_with_status_1(capsys):
    code = main(["train", "--dataset", "xor", "--sizes", "2,8,2", "--activation", "relu", "--output-activation",
                 "identity", "--eta", "10000", "--epochs", "20", "--batch-size", "4"])
    assert code == 1 and "diverged at epoch" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [(["train", "--eta", "0"], "eta must be > 0, got 0.0"),
     (["train", "--eta", "inf"], "eta must be a finite number, got inf"),
     (["train", "--eta", "nan"], "eta must be a finite number, got nan"),
     (["train", "--l2", "inf"], "l2 must be a finite number, got inf"),
     (["train", "--validation", "nan"], "validation"),
     (["train", "--validation", "inf"], "validation"),
     (["train", "--epochs", "0"], "epochs must be ≥ 1"),
     (["train", "--batch-size", "100000"], "batch_size=100000 is larger than the training set"),
     (["train", "--optimizer", "adamx"], "optimizer must be one of"),
     (["train", "--schedule", "step"], "schedule must be one of"),
     (["train", "--sizes", "10,30,10"], "sizes[0]=10 does not match the train inputs of shape (1150, 64)"),
     (["train", "--dataset", "cifar"], "unknown data set 'cifar'; expected one of: digits"),
     (["train", "--validation", "-3"], "validation"),
     (["evaluate", "/nonexistent/ckpt.msgpack"], "no checkpoint at"),
     (["evaluate", "/etc/hostname"], "not a jaxbp checkpoint")],
)
def test_train_and_evaluate_bad_input(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "spec_text,message",
    [('name = "x"\n[sweep]\netaa = [1.0]\n', "unknown axis in [sweep] of"),
     ('name = "x"\n[sweep]\neta = []\n', "[sweep] eta is empty"),
     ('name = "x"\ndataset = "digits"\n[base]\nsizes = [784, 30, 10]\n', "do not fit dataset 'digits'"),
     ("name = \n", "is not valid TOML"),
     ('name = "x"\nmode = "halving"\n[search]\nreduction_factor = 1\n', "reduction_factor must be an integer ≥ 2"),
     ('name = "x"\nmode = "pbt"\n[search]\nquantil = 0.2\n', "did you mean 'quantile'?")],
)
def test_sweep_bad_spec_is_one_line_and_status_2(spec_text, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text)
    assert main(["sweep", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "mlflow.db").exists()  # refused before anything was created


def test_a_search_on_ray_is_refused_before_ray_starts(tmp_path, capsys, monkeypatch):
    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a search")

    monkeypatch.setattr("jaxbp.sweeps.executors.ray.RayExecutor.__init__", no_ray)
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "x"\nmode = "halving"\n[sweep]\neta = [1.0, 2.0]\n')
    assert main(["sweep", str(spec), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "mode = 'halving' trains in this process" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_sweep_unreachable_tracking_uri_and_missing_spec(tmp_path, capsys):
    assert main(["sweep", "experiments/quickstart.toml", "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "tracking server http://127.0.0.1:9 is unreachable" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read spec" in capsys.readouterr().err


def test_sweep_prints_ranking_and_compare_url(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    spec = tmp_path / "s.toml"
    spec.write_text('name = "cli"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 2\n[sweep]\neta = [0.5, 2.0]\n')
    assert main(["sweep", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "ranked by final validation_accuracy" in out and "eta=0.5" in out and "eta=2" in out
    assert "jaxbp ui" in out and "/#/compare-runs?runs=[" in out and (tmp_path / "mlflow.db").exists()
    for header in ("val", "test", "train", "acc", "cost", "epochs", "status"):
        assert header in out
    assert "acc*" in out and "* running mean over the last epoch's mini-batches" in out  # measure = "running"
    assert "—" not in out.split("ranked by final")[1].split("jaxbp ui")[0]  # every column has its numbers
    assert "MLflow calls" in out


def test_a_sweep_into_a_new_store_prints_no_mlflow_info_lines(tmp_path):
    """MLflow logs "Creating initial MLflow database tables..." at INFO when it creates a store: not shown."""
    spec = tmp_path / "s.toml"
    spec.write_text('name = "quiet"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 1\n[sweep]\neta = [1.0]\n')
    done = subprocess.run([JAXBP, "sweep", str(spec)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAXBP_SPOOL": str(tmp_path / "spool")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow.db").exists() and "ranked by final" in done.stdout
    assert "INFO" not in done.stdout + done.stderr


def test_plot_draws_a_config_from_mlflow_and_refuses_what_it_cannot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    spec = tmp_path / "s.toml"
    spec.write_text('name = "plot"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 2\n[sweep]\neta = [0.5]\n')
    assert main(["sweep", str(spec)]) == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (child,) = client.search_runs(["1"], "tags.`jaxbp.kind` = 'config'")
    (parent,) = client.search_runs(["1"], "tags.`jaxbp.kind` = 'sweep'")
    capsys.readouterr()
    assert main(["plot", child.info.run_id, "--output", str(tmp_path / "c.png"), "--log"]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "learning_curves.png" in {a.path for a in client.list_artifacts(child.info.run_id)}
    for args, message in ((["plot", "0" * 32], "not found"), (["plot", parent.info.run_id], "not a jaxbp config run"),
                          (["plot", child.info.run_id, "--output", "x.pdf"], "--output must end in .png")):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_a_second_run_loads_every_program_the_first_compiled(tmp_path):
    """The command turns on JAX's persistent compilation cache in $JAXBP_CACHE/xla (where the user has set
    none): the second run compiles nothing and prints the same results."""
    env = without_jax_cache(JAXBP_CACHE=str(tmp_path / "cache"), JAX_LOG_COMPILES="1", JAX_EXPLAIN_CACHE_MISSES="1")
    args = [JAXBP, "train", "--dataset", "digits", "--epochs", "1"]
    runs = [subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300) for _ in "12"]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr[-2000:]
    first, second = ((r.stderr.count("PERSISTENT COMPILATION CACHE MISS"), r.stderr.count("cache hit for"))
                     for r in runs)
    assert first[0] > 10 and second == (0, sum(first))  # every program of the first run, loaded
    assert len(list((tmp_path / "cache" / "xla").glob("*-cache"))) == first[0]
    table = [[line for line in r.stdout.splitlines() if "│" in line] for r in runs]
    assert table[0] and [row[:row.rindex("│", 0, -1)] for row in table[0]] == \
        [row[:row.rindex("│", 0, -1)] for row in table[1]]  # the same numbers, but for the epoch's seconds
