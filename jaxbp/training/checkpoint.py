"""Saving trained parameters with the config that made them, and loading them back exactly.

What it is for: one msgpack file (via ``flax.serialization``) per checkpoint, holding a small header (format
tag and version, the jaxbp version), the ``TrainConfig``, plain metrics, and the ``Params`` bit for bit; written
atomically (temp file, fsync, ``os.replace``) so a crash never leaves a half-written checkpoint at ``path``.
What it is not: no optimizer state, no resuming mid-run, no pickle, no tracking (see ``tracking``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

import jaxbp
from jaxbp.core.types import Layer, Params, float_dtype, layer_sizes, params_dtype
from jaxbp.training.config import TrainConfig

FORMAT_TAG = "jaxbp-checkpoint"
FORMAT_VERSION = 1
# The bytes every checkpoint starts with after its map header: the key "format" and its value FORMAT_TAG.
_MAGIC = serialization.msgpack_serialize({"format": FORMAT_TAG})[1:]


class Checkpoint(NamedTuple):
    """What ``load_checkpoint`` returns: the parameters, the config that trained them, and the metrics."""

    params: Params
    config: TrainConfig
    metrics: dict


def _plain(name: str, value):
    """``value`` as a plain Python scalar (None, bool, int, float, str); 0-d arrays are unwrapped."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (np.generic, np.ndarray, jax.Array, int, float, str)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    raise TypeError(f"{name} must be a number, a string or None, got {type(value).__name__} {value!r}")


def save_checkpoint(path, params: Params, config: TrainConfig, *, metrics: dict | None = None) -> Path:
    """Write ``params``, ``config`` and ``metrics`` (plain numbers and strings) to ``path``; returns the path.

    The write is atomic: on any failure a file already at ``path`` is left as it was. Missing parents are created.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    sizes = layer_sizes(params)
    if sizes != tuple(config.sizes):
        raise ValueError(f"params have layer sizes {list(sizes)} but config.sizes is {list(config.sizes)}")
    if params_dtype(params).name != config.dtype:
        raise ValueError(f"params are {params_dtype(params).name} but config.dtype is {config.dtype}")
    metrics = {} if metrics is None else metrics
    if not isinstance(metrics, dict) or not all(isinstance(key, str) for key in metrics):
        raise TypeError(f"metrics must be a dict with string keys, got {metrics!r}")
    header = {
        # flax writes keys sorted: "format" sorts first, so every checkpoint starts with the same bytes (_MAGIC)
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "jaxbp_version": jaxbp.__version__,
        "train_config": {k: [_plain(k, n) for n in v] if isinstance(v, list) else _plain(k, v)
                         for k, v in config.to_dict().items()},
        "metrics": {k: _plain(f"metrics[{k!r}]", v) for k, v in metrics.items()},
        "params": serialization.to_state_dict(params),  # {"0": {"w": w^1, "b": b^1}, "1": ...}
    }
    data = serialization.msgpack_serialize(header)
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a checkpoint file path such as {path / 'model.msgpack'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
            os.fchmod(tmp.fileno(), 0o644)  # NamedTemporaryFile makes 0600; a checkpoint is readable like any file
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable, where the OS allows it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: truncated or corrupt jaxbp checkpoint ({why})")


def _params(path: Path, state) -> Params:
    """The tuple of Layer in a checkpoint's state dict {"0": {"w", "b"}, ...}, as jax arrays."""
    try:
        arrays = [(state[str(i)]["w"], state[str(i)]["b"]) for i in range(len(state))]
    except (KeyError, TypeError):
        arrays = []
    if not arrays or not all(isinstance(a, np.ndarray) for layer in arrays for a in layer):
        raise _corrupt(path, "params are not layers of w and b arrays")
    for dt in {a.dtype for layer in arrays for a in layer}:
        try:
            float_dtype(dt)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot load its {dt.name} params: {err}") from None
    return tuple(Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in arrays)


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``: params (tuple of Layer, same dtypes), config, metrics.

    Raises FileNotFoundError if there is no file, ValueError naming the path and the fault otherwise.
    """
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a checkpoint file") from None
    if not data:
        raise ValueError(f"{path}: not a jaxbp checkpoint (the file is empty)")
    if not data[1:].startswith(_MAGIC):
        if 0x80 <= data[0] <= 0x8F and _MAGIC.startswith(data[1:]):
            raise _corrupt(path, f"only {len(data)} bytes")
        raise ValueError(f"{path}: not a jaxbp checkpoint (it does not start with the {FORMAT_TAG!r} tag)")
    try:
        header = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack and flax raise several types for bad bytes
        raise _corrupt(path, (str(err).splitlines() or [type(err).__name__])[0]) from err
    if not isinstance(header, dict) or header.get("format") != FORMAT_TAG:
        raise ValueError(f"{path}: not a jaxbp checkpoint")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise _corrupt(path, f"format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer format version {version} "
                         f"(jaxbp {header.get('jaxbp_version')}); this jaxbp reads up to {FORMAT_VERSION}")
    missing = [k for k in ("train_config", "metrics", "params") if k not in header]
    if missing or not isinstance(header["train_config"], dict) or not isinstance(header["metrics"], dict):
        raise _corrupt(path, f"missing or bad {missing or 'header'}")
    try:
        config = TrainConfig.from_dict(header["train_config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its config (jaxbp {header.get('jaxbp_version')}) does not fit: {err}") from None
    params = _params(path, header["params"])
    try:
        sizes = layer_sizes(params)
    except (TypeError, ValueError) as err:
        raise _corrupt(path, str(err)) from None
    if sizes != config.sizes:
        raise ValueError(f"{path}: params have layer sizes {list(sizes)} but config.sizes is {list(config.sizes)}")
    return Checkpoint(params, config, dict(header["metrics"]))
