"""The driver behind ``jaxbp explain``: pick the network and the example(s), run ``jaxbp.explain``, show the trace.

What it is for: ``run_explain`` checks every option before any compute, builds the network (a fresh seeded one of
``--sizes``, or a checkpoint's, e.g. a sweep child's ``checkpoint.msgpack``), takes one example (or ``--batch``
examples) of a dataset or seeded random inputs, calls ``jaxbp.core.explain.explain`` and prints the terminal
walk-through (``walkthrough``), Markdown or JSON, and/or writes the HTML page.
What it is not: no maths (the core's), no formatting of Markdown, HTML or JSON (``jaxbp.sweeps.explain_page``).
"""

from __future__ import annotations

from pathlib import Path

import jax
from rich.console import Console

from jaxbp.app.commands import positive, use_dtype
from jaxbp.app.walkthrough import walkthrough
from jaxbp.core.explain import DEFAULT_ETA, explain
from jaxbp.core.network import check_sizes, init_params, resolve
from jaxbp.sweeps.explain_page import render_html, render_json, render_markdown

DEFAULT_SIZES = (2, 3, 2)  # the tiny network a learner follows by hand
DATASET_HIDDEN = 3  # with --dataset and no --sizes: n_in, DATASET_HIDDEN, n_classes
WIDTH = 120  # columns of the walk-through when stdout is not a terminal
FROM_CHECKPOINT = ("sizes", "activation", "output_activation", "cost", "init", "seed")


def _fresh_inputs(key, m: int, n_in: int, n_out: int, dtype):
    """m inputs in [0, 1] rounded to 2 decimals (easy to follow by hand) and one-hot targets, from ``key``."""
    k_x, k_y = jax.random.split(key)
    X = jax.numpy.round(jax.random.uniform(k_x, (m, n_in), dtype), 2)
    Y = jax.nn.one_hot(jax.random.randint(k_y, (m,), 0, n_out), n_out, dtype=dtype)
    return X, Y


def _checkpoint(options: dict, checkpoint: Path):
    """The checkpoint, refusing network options that its config already sets."""
    given = [f"--{name.replace('_', '-')}" for name in FROM_CHECKPOINT if options[name] is not None]
    if given:
        raise ValueError(f"{', '.join(given)} cannot be combined with --checkpoint: the checkpoint's config sets them")
    from jaxbp.training.checkpoint import load_checkpoint

    use_dtype("float64")  # a float64 checkpoint needs it; float32 ones are unaffected
    return load_checkpoint(checkpoint)


def _network(options: dict, ckpt, data, dtype: str):
    """(params, activation, output_activation, cost, default η) of the checkpoint, or of a fresh seeded network of
    --sizes (default: n_in, DATASET_HIDDEN, n_classes of the data, else DEFAULT_SIZES)."""
    if ckpt is not None:
        config = ckpt.config
        params = jax.tree.map(lambda leaf: leaf.astype(dtype), ckpt.params)
        return params, config.activation, config.output_activation, config.cost, config.eta
    default = DEFAULT_SIZES if data is None else (data.n_in, DATASET_HIDDEN, data.n_classes)
    sizes = check_sizes(options["sizes"] or list(default))
    activation, cost = options["activation"] or "sigmoid", options["cost"] or "quadratic"
    resolve(activation, options["output_activation"], cost, sizes[-1])  # bad names before any compute
    key = jax.random.split(jax.random.key(options["seed"] or 0))[0]
    params = init_params(key, sizes, options["init"] or "normal", dtype)
    return params, activation, options["output_activation"], cost, DEFAULT_ETA


def _examples(data, example: int, batch: int, sizes, dtype: str, seed: int):
    """(X, Y, where they come from): ``batch`` examples from index ``example`` of the training split of ``data``
    (a Dataset), or seeded random inputs where it is None; checked against the network's ``sizes``."""
    if data is None:
        key = jax.random.split(jax.random.key(seed))[1]
        X, Y = _fresh_inputs(key, batch, sizes[0], sizes[-1], dtype)
        return X, Y, f"random inputs (seed {seed})"
    from jaxbp.training.loop import check_dataset

    check_dataset(sizes, data)
    n = data.train.X.shape[0]
    if example + batch > n:
        span = f"examples {example}..{example + batch - 1}" if batch > 1 else f"example {example}"
        raise ValueError(f"--example must leave room for --batch {batch} in the {n} training examples of "
                         f"{data.name} (0..{n - batch}), got {span}")
    rows = slice(example, example + batch)
    where = f"{data.name} training example {example}" + (f"..{example + batch - 1}" if batch > 1 else "")
    return data.train.X[rows], data.train.Y[rows], where


def run_explain(options: dict, *, dataset, example: int, batch: int, checkpoint, eta, markdown: bool,
                html: Path | None, json_output: bool) -> None:
    """``jaxbp explain``: see the module docstring. ``options`` holds the network options (None = not given)."""
    if markdown and json_output:
        raise ValueError("--markdown and --json both print to stdout: choose one")
    if eta is not None:
        positive("--eta", eta)
    if options["dtype"] not in (None, "float32", "float64"):
        raise ValueError(f"--dtype must be one of: float64, float32, got {options['dtype']!r}")
    if html is not None and Path(html).is_dir():
        raise ValueError(f"--html {html} is a directory; give a file path such as {Path(html) / 'explain.html'}")
    if example is not None and dataset is None:
        raise ValueError("--example needs --dataset (without it the inputs are random, drawn from --seed)")
    ckpt = None if checkpoint is None else _checkpoint(options, checkpoint)
    dtype = options["dtype"] or (ckpt.config.dtype if ckpt is not None else "float64")
    use_dtype(dtype)
    data = None
    if dataset is not None:
        from jaxbp.training.data import load_dataset

        data = load_dataset(dataset, dtype=dtype)  # as training reads it
    params, activation, output_activation, cost, default_eta = _network(options, ckpt, data, dtype)
    network = "a fresh network" if ckpt is None else f"checkpoint {checkpoint}"
    sizes = [params[0].w.shape[1], *(layer.w.shape[0] for layer in params)]
    X, Y, source = _examples(data, example or 0, batch, sizes, dtype, options["seed"] or 0)
    x, y = (X[0], Y[0]) if batch == 1 else (X, Y)
    trace = explain(params, x, y, activation, cost, output_activation, default_eta if eta is None else eta)
    title = f"One step of Algorithm 5.3: network {'-'.join(map(str, sizes))}, {network}, {source}"
    if html is not None:
        path = Path(html).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(trace, title), encoding="utf-8")
    if json_output:
        print(render_json(trace))
    elif markdown:
        print(render_markdown(trace, title))
    else:
        console = Console()
        if not console.is_terminal:
            console.width = max(console.width, WIDTH)  # a pipe or a file: plugged-in sums stay on one line
        console.print(walkthrough(trace, title))
    if html is not None:
        Console(stderr=json_output or markdown).print(f"wrote {html}", soft_wrap=True)
