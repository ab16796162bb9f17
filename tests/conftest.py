"""Test set-up: JAX runs in its default float32; a test marked ``x64`` (or a module with
``pytestmark = pytest.mark.x64``) runs with 64-bit types enabled, and only for its own duration."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# JAX's persistent compilation cache, for this process and every `jaxbp` subprocess a test starts (set before JAX
# is imported): a program compiled once in a run (a sweep, then its --resume; the same spec in several tests) is
# loaded, not compiled again. The executables are XLA's own, so results are the same bit for bit; the folder is
# git-ignored and `make clean` removes it.
CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation-cache"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

# the sizes a sweep's groups are split into are measured once per machine and cached (jaxbp.training.chunks): in
# the tests, in a folder of this run's own (made by the process that starts the run, xdist's workers inherit
# it), never the user's ~/.cache, and removed when that process ends
if "JAXBP_CACHE" not in os.environ:
    os.environ["JAXBP_CACHE"] = tempfile.mkdtemp(prefix="jaxbp-cache-")
    atexit.register(shutil.rmtree, os.environ["JAXBP_CACHE"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _x64(request):
    if request.node.get_closest_marker("x64") is None:
        yield
    else:
        with jax.enable_x64(True):
            yield
    # a command run in-process with float64 switches the process to 64-bit (as `jaxbp gradcheck` does, for good):
    # back to the default, so the next test in this worker runs as the docstring says
    jax.config.update("jax_enable_x64", False)


@pytest.fixture
def small():
    """A [4, 5, 3] network with a batch of 6 in float64 (for x64 tests)."""
    from helpers import problem

    return problem([4, 5, 3])


@pytest.fixture(scope="module")
def postgres():
    """A running PostgreSQL cluster of the test module's own (services/postgres/dev-cluster.sh in a temporary
    folder, on a free port: each xdist worker gets its own), stopped and removed after the module. Skipped naming
    Debian's ``postgresql`` where its binaries are missing; a failure under CI=true."""
    from postgres import Cluster, require_postgres

    require_postgres()
    cluster = Cluster.init()
    yield cluster
    cluster.close()
