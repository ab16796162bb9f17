"""Checkpoints: exact round trip, atomic writes, and one clear error for every kind of bad file."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import jaxbp
from jaxbp.training import checkpoint
from jaxbp.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from jaxbp.training.config import TrainConfig

pytestmark = pytest.mark.x64

SIZES = (4, 3, 2)


def make(dtype=jnp.float32):
    params = jaxbp.init_params(jax.random.key(0), list(SIZES), dtype=dtype)
    return params, TrainConfig(sizes=SIZES, dtype=jnp.dtype(dtype).name)


def assert_same(restored, params):
    assert isinstance(restored, tuple) and all(isinstance(layer, jaxbp.Layer) for layer in restored)
    assert jax.tree.structure(restored) == jax.tree.structure(params)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(params)):
        assert isinstance(got, jax.Array)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()  # bit-exact


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip_is_exact(tmp_path, dtype):
    params, _ = make(dtype)
    config = TrainConfig(sizes=SIZES, eta=0.5, output_activation="softmax", cost="log_likelihood",
                         dtype=jnp.dtype(dtype).name, optimizer="adam")
    metrics = {"test_accuracy": 0.9375, "epochs_run": 7, "note": "ok", "best": None}
    written = save_checkpoint(tmp_path / "model.msgpack", params, config, metrics=metrics)
    assert written == tmp_path / "model.msgpack" and written.is_file()
    ck = load_checkpoint(str(written))
    assert isinstance(ck, Checkpoint)
    assert_same(ck.params, params)
    assert ck.config == config and ck.config.sizes == SIZES
    assert ck.metrics == metrics and type(ck.metrics["epochs_run"]) is int


def test_array_metrics_become_plain_numbers(tmp_path):
    params, config = make()
    save_checkpoint(tmp_path / "m", params, config, metrics={"acc": jnp.float32(0.5), "n": np.int64(3)})
    metrics = load_checkpoint(tmp_path / "m").metrics
    assert metrics == {"acc": 0.5, "n": 3}
    assert type(metrics["acc"]) is float and type(metrics["n"]) is int


def test_no_metrics_loads_as_empty_dict(tmp_path):
    params, config = make()
    save_checkpoint(tmp_path / "m", params, config)
    assert load_checkpoint(tmp_path / "m").metrics == {}


def test_header_fields(tmp_path):
    params, config = make()
    save_checkpoint(tmp_path / "m", params, config)
    header = serialization.msgpack_restore((tmp_path / "m").read_bytes())
    assert sorted(header) == ["format", "format_version", "jaxbp_version", "metrics", "params", "train_config"]
    assert b"jaxbp-checkpoint" in (tmp_path / "m").read_bytes()[:32]  # the tag comes first in the file
    assert header["format"] == "jaxbp-checkpoint" and header["format_version"] == checkpoint.FORMAT_VERSION
    assert header["jaxbp_version"] == jaxbp.__version__
    assert header["train_config"] == config.to_dict()


def test_float64_without_x64_is_a_clear_error(tmp_path):
    params, config = make(jnp.float64)
    save_checkpoint(tmp_path / "m", params, config)
    with jax.enable_x64(False), pytest.raises(ValueError, match="float64.*jax_enable_x64") as err:
        load_checkpoint(tmp_path / "m")
    assert str(tmp_path / "m") in str(err.value) and "\n" not in str(err.value)


def test_saving_creates_missing_parent_directories(tmp_path):
    params, config = make()
    target = tmp_path / "runs" / "a" / "model.msgpack"
    save_checkpoint(target, params, config)
    assert_same(load_checkpoint(target).params, params)


def test_overwrite_replaces_the_old_checkpoint(tmp_path):
    params, config = make()
    other = jaxbp.init_params(jax.random.key(1), list(SIZES))
    save_checkpoint(tmp_path / "m", params, config)
    save_checkpoint(tmp_path / "m", other, config)
    assert_same(load_checkpoint(tmp_path / "m").params, other)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert (os.stat(tmp_path / "m").st_mode & 0o777) == 0o644


@pytest.mark.parametrize("broken", ["replace", "fsync"])
def test_failed_save_keeps_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch, broken):
    params, config = make()
    save_checkpoint(tmp_path / "m", params, config, metrics={"v": 1})
    before = (tmp_path / "m").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(checkpoint.os, broken, boom)
    other = jaxbp.init_params(jax.random.key(1), list(SIZES))
    with pytest.raises(OSError, match="disk on fire"):
        save_checkpoint(tmp_path / "m", other, config, metrics={"v": 2})
    monkeypatch.undo()
    assert (tmp_path / "m").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m"]
    ck = load_checkpoint(tmp_path / "m")
    assert ck.metrics == {"v": 1}
    assert_same(ck.params, params)


def test_path_that_is_a_directory_is_refused(tmp_path):
    params, config = make()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_checkpoint(tmp_path, params, config)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_checkpoint(tmp_path)
    assert os.listdir(tmp_path) == []


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at") as err:
        load_checkpoint(tmp_path / "nope.msgpack")
    assert "\n" not in str(err.value)


def bad_file(tmp_path, data: bytes):
    path = tmp_path / "bad"
    path.write_bytes(data)
    return path


def expect_error(path, pattern):
    with pytest.raises(ValueError, match=pattern) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02])
def test_truncated_file(tmp_path, keep):
    params, config = make()
    save_checkpoint(tmp_path / "m", params, config)
    data = (tmp_path / "m").read_bytes()
    expect_error(bad_file(tmp_path, data[: int(len(data) * keep)]), "truncated or corrupt")


def test_empty_file(tmp_path):
    expect_error(bad_file(tmp_path, b""), "not a jaxbp checkpoint.*empty")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    expect_error(bad_file(tmp_path, np.random.default_rng(seed).bytes(256)), "not a jaxbp checkpoint")


def test_json_file(tmp_path):
    _, config = make()
    expect_error(bad_file(tmp_path, json.dumps(config.to_dict()).encode()), "not a jaxbp checkpoint")


def test_msgpack_of_something_else(tmp_path):
    params, _ = make()
    data = serialization.msgpack_serialize({"params": serialization.to_state_dict(params), "step": 3})
    expect_error(bad_file(tmp_path, data), "not a jaxbp checkpoint")
    expect_error(bad_file(tmp_path, serialization.msgpack_serialize({"format": "other"})), "not a jaxbp checkpoint")


def rewrite(path, **changes):
    """A checkpoint at ``path`` with header fields replaced, as a foreign or future writer might."""
    header = serialization.msgpack_restore(path.read_bytes())
    header.update(changes)
    path.write_bytes(serialization.msgpack_serialize(header))
    return path


def test_newer_format_version(tmp_path):
    params, config = make()
    path = save_checkpoint(tmp_path / "m", params, config)
    newer = checkpoint.FORMAT_VERSION + 1
    expect_error(rewrite(path, format_version=newer), f"written by a newer format version {newer}")


def test_corrupt_params_and_mismatched_sizes_in_file(tmp_path):
    params, config = make()
    path = save_checkpoint(tmp_path / "m", params, config)
    good = path.read_bytes()
    expect_error(rewrite(path, params={"0": {"w": np.zeros((3, 4), np.float32)}}), "truncated or corrupt")
    path.write_bytes(good)
    expect_error(rewrite(path, train_config=TrainConfig(sizes=(4, 5, 2)).to_dict()), r"\[4, 3, 2\].*\[4, 5, 2\]")
    path.write_bytes(good)
    expect_error(rewrite(path, train_config={**config.to_dict(), "colour": "red"}), "unknown TrainConfig key")


def test_save_refuses_bad_inputs(tmp_path):
    params, config = make()
    with pytest.raises(ValueError, match=r"layer sizes \[4, 3, 2\] but config.sizes is \[4, 5, 2\]"):
        save_checkpoint(tmp_path / "m", params, TrainConfig(sizes=(4, 5, 2)))
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        save_checkpoint(tmp_path / "m", params, config.to_dict())
    with pytest.raises(TypeError, match="tuple of Layer"):
        save_checkpoint(tmp_path / "m", list(params), config)
    with pytest.raises(TypeError, match="metrics"):
        save_checkpoint(tmp_path / "m", params, config, metrics={"curve": [0.1, 0.2]})
    assert os.listdir(tmp_path) == []


def test_save_refuses_params_of_another_dtype_than_the_config(tmp_path):
    params, _ = make(jnp.float64)
    with pytest.raises(ValueError, match="params are float64 but config.dtype is float32"):
        save_checkpoint(tmp_path / "m", params, TrainConfig(sizes=SIZES))
