"""explain_best: a real sweep with explain_example = N into a SQLite store; its parent gets explain.html, an HTML
page with the network as an SVG, and the page is the explain trace of the best config's final weights on test
example N; an example beyond the test split is refused in one line before anything is created."""

import os
from html.parser import HTMLParser

import pytest
from mlflow.tracking import MlflowClient

from helpers import store
from jaxbp.app.cli import main
from jaxbp.core.explain import explain
from jaxbp.sweeps import explain_best
from jaxbp.sweeps.boundaries import child_checkpoint
from jaxbp.sweeps.explain_page import render_html
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec
from jaxbp.training.data import load_dataset

SPEC = {"name": "explained", "dataset": "xor", "explain_example": 7,
        "base": {"sizes": [2, 4, 2], "epochs": 3, "batch_size": 16, "activation": "tanh",
                 "output_activation": "softmax", "cost": "log_likelihood", "optimizer": "adam", "init": "scaled"},
        "sweep": {"eta": [0.01, 0.1]}}  # 2 configs; xor's test split has 80 examples


class Tags(HTMLParser):
    """The start tags of a page, in order."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explained")
    os.environ["JAXBP_SPOOL"] = str(tmp / "spool")
    spec = parse_spec(SPEC)
    return spec, run_sweep(spec, store(tmp)), MlflowClient(store(tmp)), tmp


def page_of(spec, row, client, folder) -> str:
    """The explain page of ``row``'s final weights on the spec's test example, computed here."""
    saved = child_checkpoint(client, row.run_id, folder)
    test = load_dataset(spec.dataset).test
    c = saved.config
    trace = explain(saved.params, test.X[spec.explain_example], test.Y[spec.explain_example], c.activation, c.cost,
                    c.output_activation, c.eta)
    return render_html(trace, title=explain_best.title(spec, row))


def test_the_parent_gets_the_best_configs_page_with_its_svg(finished):
    spec, result, client, tmp = finished
    assert explain_best.FILE in {a.path for a in client.list_artifacts(result.parent_run_id)}
    logged = open(client.download_artifacts(result.parent_run_id, explain_best.FILE, str(tmp))).read()
    parser = Tags()
    parser.feed(logged)
    parser.close()
    assert parser.tags[0] == "html" and "svg" in parser.tags and "body" in parser.tags
    best, other = result.rows
    assert best.value is not None and best.name in logged and "test example 7" in logged
    assert logged == page_of(spec, best, client, tmp / "best")  # the best config's weights, on example 7
    assert logged != page_of(spec, other, client, tmp / "other")  # another config's page differs


def test_no_page_without_an_example(finished, tmp_path):
    spec, result, client, _ = finished
    unset = parse_spec({k: v for k, v in SPEC.items() if k != "explain_example"})
    assert explain_best.explain_best(unset, result.rows, client, load_dataset("xor"), tmp_path) == []
    assert unset.digest != spec.digest  # the example is part of the spec's hash


def test_an_example_beyond_the_test_split_is_refused_before_anything_is_created(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^explain_example = 80 is not an example of dataset 'xor': its test "
                                         r"split has 80 \(0 to 79\)$"):
        run_sweep(parse_spec({**SPEC, "explain_example": 80}), store(tmp_path))
    assert not (tmp_path / "mlflow.db").exists()
    spec = tmp_path / "s.toml"
    spec.write_text('name = "x"\ndataset = "xor"\nexplain_example = 99\n[sweep]\neta = [1.0]\n')
    assert main(["sweep", str(spec), "--tracking-uri", store(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "explain_example = 99 is not an example of dataset 'xor'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()
