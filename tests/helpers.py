"""What several test modules share: small random problems, free loopback ports, and the Debian packages some
tests need (skipped with the package named where it is missing; a failure under CI=true)."""

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jaxbp

# Each pairing: (cost, output activation or None for "same as hidden").
PAIRINGS = [
    ("quadratic", None),
    ("quadratic", "softmax"),
    ("cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
    ("log_likelihood", "softmax"),
    ("log_likelihood", "sigmoid"),
]
# Odd widths, width 1 included (input, hidden and output); depth = number of weight layers.
WIDTHS = {1: [5, 1], 2: [3, 1, 3], 3: [7, 5, 1, 3], 4: [1, 3, 7, 5, 3]}


def problem(sizes, m=6, dtype=jnp.float64, seed=0, scheme="normal"):
    """Params, inputs X ~ U(0,1) (m, n_in) and targets Y ~ U(0,1) (m, n_out), from one seed."""
    k_p, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = jaxbp.init_params(k_p, sizes, scheme, dtype)
    X = jax.random.uniform(k_x, (m, sizes[0]), dtype)
    Y = jax.random.uniform(k_y, (m, sizes[-1]), dtype)
    return params, X, Y


def sizes_for(depth, output):
    """WIDTHS[depth], with at least 3 outputs for softmax (over one output it is the constant 1)."""
    sizes = list(WIDTHS[depth])
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 3)
    return sizes


def tiny(n=24, n_in=4, n_out=3, seed=0, dtype=jnp.float32):
    """A small random classification set with n training examples and 6 each for validation and test."""
    keys = jax.random.split(jax.random.key(seed), 3)

    def split(key, m):
        kx, ky = jax.random.split(key)
        return jaxbp.Split(jax.random.uniform(kx, (m, n_in), dtype),
                     jax.nn.one_hot(jax.random.randint(ky, (m,), 0, n_out), n_out, dtype=dtype))

    return jaxbp.Dataset("tiny", split(keys[0], n), split(keys[1], 6), split(keys[2], 6))


def without_jax_cache(**env: str) -> dict[str, str]:
    """This process's environment without JAX's compilation-cache settings (which conftest sets for the run),
    plus ``env``: a subprocess that sees what a user without them would."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT"))}
    return {**kept, **env}


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


CHROMIUM = "/usr/bin/chromium"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def require_package(path: str, package: str) -> None:
    """Skip the calling test, naming the Debian ``package`` to install, when ``path`` is missing; under
    ``CI=true`` fail instead, so that CI never passes without the browser or the real data."""
    if not Path(path).exists():
        cannot(f"needs Debian's {package} ({path} is missing): apt-get install {package}, or run `make test` as root")


def cannot(why: str) -> None:
    """Skip the calling test, saying ``why`` it cannot run here; under ``CI=true``, where every test runs, fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {why}", pytrace=False)
    pytest.skip(why)


def store(folder) -> str:
    """The tracking URI of a SQLite MLflow store ``mlflow.db`` in ``folder``."""
    return f"sqlite:///{Path(folder) / 'mlflow.db'}"


def count_children(db) -> int:
    """How many child runs the SQLite MLflow store ``db`` holds so far (0 while it is being created)."""
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("select count(*) from tags where key = 'mlflow.parentRunId'").fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_9_and_resume(args: list[str], env: dict, ready, *, within: float = 240) -> None:
    """Start the command ``args`` (a ``jaxbp sweep``), kill it with SIGKILL as soon as ``ready()`` holds (it must
    still be running then, at most ``within`` seconds later), then run it again with ``--resume``: that must
    end with exit status 0."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + within
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
