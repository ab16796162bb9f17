"""What jaxbp keeps on this machine between runs, in one folder: ``$JAXBP_CACHE``, else ``$XDG_CACHE_HOME/jaxbp``,
else ``~/.cache/jaxbp``.

What it is for: ``folder()``, which holds ``chunk_sizes.json`` (the group sizes ``chunks`` measured) and ``xla/``,
JAX's persistent compilation cache, which the command line turns on for its own process and the processes it
starts (``use_compilation_cache``): a second run of a sweep, a training or a gradcheck loads the XLA programs
the first one compiled instead of compiling them again.
What it is not: nothing here imports jax (JAX reads these settings from the environment when it is imported).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_ENV = "JAXBP_CACHE"
COMPILATION_CACHE_BYTES = 2**30  # JAX evicts the least recently used programs past this (1 GiB)


def folder() -> Path:
    """$JAXBP_CACHE, else $XDG_CACHE_HOME/jaxbp, else ~/.cache/jaxbp."""
    return Path(os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "jaxbp")


def use_compilation_cache() -> bool:
    """Turn on JAX's persistent compilation cache in ``folder()/xla`` for this process and those it starts, up to
    ``COMPILATION_CACHE_BYTES``, keeping every program however quickly it compiled (a sweep's many small programs
    add up; JAX's default keeps only those that took a second). Left alone, returning False, where the user
    chose a cache (``$JAX_COMPILATION_CACHE_DIR``; ``JAX_ENABLE_COMPILATION_CACHE=false`` turns any off) or jax
    is already imported (it has read its settings)."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return False
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder() / "xla")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILATION_CACHE_BYTES))
    return True
