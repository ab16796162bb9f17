"""jaxbp explain: the walk-through in the slides' order, Markdown, JSON and the HTML page; a dataset's example, a
trained checkpoint (a sweep child's too); wide networks summarised; bad input is one line and exit status 2."""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import jaxbp
from helpers import store
from jaxbp.app.cli import main
from jaxbp.sweeps.explain_page import PAGE_NEURONS, number
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec

pytestmark = pytest.mark.x64

STEPS = ["1. Feedforward", "layer 1: net^1 = w^1 a^0 + b^1", "layer 2: net^2 = w^2 a^1 + b^2", "cost C = l(x) = ",
         "2. Output error (BP1)", "BP1: δ^2 = ∇_a C ⊙ σ'(net^2)", "3. Backpropagate the error (BP2)",
         "BP2, layer 1: δ^1 = ((w^2)ᵀ δ^2) ⊙ σ'(net^1)", "4. Gradient (BP3", "5. Gradient descent",
         "6. The cost", "7. Check δ by its definition", "The angel: nudge net^l_j by ±Δ"]


@pytest.fixture(autouse=True)
def _in_tmp_path(monkeypatch, tmp_path):
    """Each test in a folder of its own (the command's files land there; conftest puts 64-bit mode back after)."""
    monkeypatch.chdir(tmp_path)


def run(args, capsys) -> tuple[int, str, str]:
    code = main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_no_options_walks_through_one_step_in_the_order_of_the_slides(capsys):
    code, out, _ = run([], capsys)
    assert code == 0
    positions = [out.find(step) for step in STEPS]
    assert -1 not in positions and positions == sorted(positions), dict(zip(STEPS, positions))
    code, text, _ = run(["--json"], capsys)  # the same seeded step, every number
    data = json.loads(text)
    assert code == 0 and data["info"]["sizes"] == [2, 3, 2] and data["info"]["m"] == 1 and data["eta"]["value"] == 3.0
    for value in (data["cost_before"]["value"], data["cost_after"]["value"], *data["layers"][0]["delta"]["value"],
                  *data["layers"][1]["w_new"]["value"][0], data["layers"][0]["angel"]["value"][2]):
        assert number(value) in out  # the walk-through shows the trace's numbers, rounded as a learner reads them
    assert "0.48·" in out or "·0.48" in out  # inputs rounded to 2 decimals, plugged into net^1 = Σ_k w_jk a_k + b_j


def test_markdown_and_html(capsys, tmp_path):
    code, out, _ = run(["--markdown", "--sizes", "3,4,2", "--seed", "2"], capsys)
    assert code == 0 and out.startswith("# One step of Algorithm 5.3: network 3-4-2") and "$$\n\\mathrm{net}^{1}" in out
    page = tmp_path / "pages" / "step.html"
    code, out, err = run(["--html", str(page), "--batch", "3"], capsys)
    assert code == 0 and "1. Feedforward — example x = 1" in out and f"wrote {page}" in out
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count('class="node"') == 7 and 'id="example"' in text


def test_one_example_of_a_dataset(capsys):
    code, out, _ = run(["--dataset", "digits", "--example", "5", "--json"], capsys)
    data = json.loads(out)
    digits = jaxbp.load_dataset("digits", dtype="float64")
    assert code == 0 and data["info"]["sizes"] == [64, 3, 10]  # n_in, 3, n_classes
    np.testing.assert_array_equal(data["x"]["value"], digits.train.X[5])
    np.testing.assert_array_equal(data["y"]["value"], digits.train.Y[5])


def test_a_wide_network_is_summarised(capsys):
    assert PAGE_NEURONS < 20
    code, out, _ = run(["--sizes", "20,15,3"], capsys)
    assert code == 0
    angel = out[out.index("The angel"):]
    rows = [line.split() for line in angel.splitlines()[3:] if line.strip()]
    assert [r[:2] for r in rows if r[0] == "1"] == [["1", str(j)] for j in (1, 2, 3, 4, 5, 11, 12, 13, 14, 15)]
    assert "…" in angel and "‖·‖" in out  # a norm row for the 15-wide layer
    assert "∂C/∂w^1_j20" not in out and "‖∂C/∂w^1_j·‖" in out  # 20 inputs: row norms, not 20 columns


def test_a_trained_checkpoint(capsys, tmp_path):
    data = jaxbp.load_dataset("digits")
    config = jaxbp.TrainConfig(sizes=(64, 8, 10), epochs=1, eta=2.0)
    result = jaxbp.train(config, data)
    path = jaxbp.save_checkpoint(tmp_path / "trained.msgpack", result.params, config)
    code, out, _ = run(["--checkpoint", str(path), "--dataset", "digits", "--example", "3", "--json"], capsys)
    trace = json.loads(out)
    assert code == 0 and trace["info"]["dtype"] == "float32" and trace["eta"]["value"] == 2.0  # the config's
    for layer, entry in zip(result.params, trace["layers"]):
        np.testing.assert_array_equal(np.array(entry["w"]["value"], np.float32), layer.w)
    code, out, _ = run(["--checkpoint", str(path), "--eta", "0.5", "--batch", "2"], capsys)
    assert code == 0 and "network 64-8-10, checkpoint" in out and "η = 0.5" in out


def test_a_sweep_childs_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = {"name": "explain", "dataset": "xor", "base": {"sizes": [2, 4, 2], "epochs": 2, "batch_size": 8},
            "sweep": {"eta": [0.5, 2.0]}}
    result = run_sweep(parse_spec(spec), store(tmp_path))
    best = result.rows[0]
    path = MlflowClient(store(tmp_path)).download_artifacts(best.run_id, "checkpoint.msgpack", str(tmp_path))
    code, out, _ = run(["--checkpoint", path, "--dataset", "xor", "--example", "7", "--json"], capsys)
    trace = json.loads(out)
    assert code == 0 and trace["info"]["sizes"] == [2, 4, 2] and trace["eta"]["value"] == best.eta
    xor = jaxbp.load_dataset("xor")
    np.testing.assert_array_equal(np.array(trace["x"]["value"], np.float32), xor.train.X[7])


@pytest.mark.parametrize(
    "args,message",
    [(["--dataset", "digits", "--example", "1150"], "--example must leave room for --batch 1 in the 1150 training "
                                                    "examples of digits (0..1149), got example 1150"),
     (["--dataset", "digits", "--example", "1149", "--batch", "2"], "got examples 1149..1150"),
     (["--dataset", "digits", "--sizes", "5,3,10"], "sizes[0]=5 does not match the train inputs"),
     (["--eta", "nan"], "--eta must be a finite number > 0, got nan"),
     (["--eta", "-1"], "--eta must be a finite number > 0, got -1.0"),
     (["--example", "3"], "--example needs --dataset"),
     (["--example", "-1", "--dataset", "digits"],
      "Invalid value for '--example': Input should be greater than or equal to 0"),
     (["--batch", "0"], "Invalid value for '--batch': Input should be greater than or equal to 1"),
     (["--markdown", "--json"], "--markdown and --json both print to stdout: choose one"),
     (["--checkpoint", "missing.msgpack"], "no checkpoint at missing.msgpack"),
     (["--checkpoint", "missing.msgpack", "--sizes", "2,2"], "--sizes cannot be combined with --checkpoint"),
     (["--sizes", "2"], "sizes needs at least 2 layers"),
     (["--activation", "sigmod"], "unknown activation 'sigmod'"),
     (["--cost", "cross_entropy", "--activation", "tanh"], "cost cross_entropy needs outputs in (0, 1)"),
     (["--dtype", "float16"], "--dtype must be one of: float64, float32"),
     (["--html", "."], "--html . is a directory")],
)
def test_bad_input_is_one_line_status_2_and_creates_nothing(args, message, capsys, tmp_path):
    page = tmp_path / "out" / "page.html"
    code, out, err = run([*args, *([] if "--html" in args else ["--html", str(page)])], capsys)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not page.exists() and not page.parent.exists()
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == []
