"""The best config of a finished sweep, explained: one step of Algorithm 5.3 on one test example, as a page.

What it is for: with ``explain_example = N`` in the spec, ``explain_best`` runs ``jaxbp.explain`` on the best
config's final weights (its child run's ``checkpoint.msgpack``) and example N of the test split, renders the
trace with ``explain_page.render_html`` (the network as an SVG, every number of the step) and returns the page,
``explain.html``, for the parent run, where the MLflow UI shows it. The step explained is Algorithm 5.3's plain
SGD step at the config's η with the config's activations and cost, whichever optimizer trained it (the page's
"after" is that SGD step's, not Adam's); a PBT config's η is its starting one.
What it is not: no ranking (see ``results``), no rendering (see ``explain_page``), no BP (see ``core.explain``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from jaxbp.core.explain import explain
from jaxbp.sweeps.boundaries import child_checkpoint
from jaxbp.sweeps.contracts import Row
from jaxbp.sweeps.explain_page import render_html
from jaxbp.sweeps.spec import SweepSpec
from jaxbp.training.data import Dataset

FILE = "explain.html"


def title(spec: SweepSpec, best: Row) -> str:
    """The page's title: the sweep, its best config and its value, the test example."""
    return (f"{spec.name}: the best config, {best.name} ({spec.metric} {best.value:.4g}), "
            f"on test example {spec.explain_example}")


def explain_best(spec: SweepSpec, rows: Sequence[Row], client, data: Dataset, folder: Path) -> list[Path]:
    """[``folder``/explain.html] of the best of ``rows`` (ranked, best first) on test example
    ``spec.explain_example``; [] when the spec names no example or no config has a finite value."""
    if spec.explain_example is None or not rows or rows[0].value is None:
        return []
    best, n = rows[0], spec.explain_example
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        checkpoint = child_checkpoint(client, best.run_id, Path(tmp))
    config = checkpoint.config
    trace = explain(checkpoint.params, data.test.X[n], data.test.Y[n], config.activation, config.cost,
                    config.output_activation, config.eta)
    path = folder / FILE
    path.write_text(render_html(trace, title=title(spec, best)), encoding="utf-8")
    return [path]
