"""Where jaxbp keeps things between runs, and the compilation cache the command line turns on."""

import subprocess
import sys
from pathlib import Path

from helpers import without_jax_cache
from jaxbp.training import caches

CHECK = ("import os, sys; from jaxbp.training.caches import use_compilation_cache as use;{before} print(use());"
         " import jax; c = jax.config; print(c.jax_compilation_cache_dir, c.jax_persistent_cache_min_compile_time_secs,"
         " c.jax_compilation_cache_max_size)")


def test_the_folder_is_jaxbp_cache_else_xdg_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXBP_CACHE", str(tmp_path / "mine"))
    assert caches.folder() == tmp_path / "mine"
    monkeypatch.delenv("JAXBP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert caches.folder() == tmp_path / "xdg" / "jaxbp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert caches.folder() == tmp_path / "home" / ".cache" / "jaxbp"


def check(tmp_path: Path, before: str = "", **env: str) -> list[str]:
    """What use_compilation_cache() returned and JAX's cache settings after it, in a fresh process whose
    environment has no JAX cache settings but ``env``."""
    return subprocess.run([sys.executable, "-c", CHECK.format(before=before)], capture_output=True, text=True,
                          env=without_jax_cache(JAXBP_CACHE=str(tmp_path), **env), check=True).stdout.split()


def test_the_compilation_cache_is_turned_on_in_the_folder_keeping_every_program(tmp_path):
    assert check(tmp_path) == ["True", str(tmp_path / "xla"), "0.0", str(caches.COMPILATION_CACHE_BYTES)]


def test_a_users_own_cache_and_settings_are_kept(tmp_path):
    assert check(tmp_path, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "theirs")) == \
        ["False", str(tmp_path / "theirs"), "1.0", "-1"]  # JAX's own defaults, untouched
    assert check(tmp_path, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="2", JAX_COMPILATION_CACHE_MAX_SIZE="1000") == \
        ["True", str(tmp_path / "xla"), "2.0", "1000"]


def test_nothing_is_set_once_jax_is_imported(tmp_path):
    assert check(tmp_path, before=" import jax;") == ["False", "None", "1.0", "-1"]
