"""Data sets as arrays a network takes: inputs X in [0, 1], one-hot targets Y, fixed train/validation/test splits.

What it is for: ``load_dataset`` returns a ``Dataset`` of three ``Split``s from scikit-learn's bundled digits
(the default), Fashion-MNIST from Debian's ``dataset-fashion-mnist``, MNIST or any folder of the four
MNIST-format IDX files, or a small 2-D synthetic set (XOR, moons, and TensorFlow Playground's circle, gauss and
spiral); ``read_idx`` reads one IDX file.
What it is not: nothing downloads (every source is on disk or generated); no mini-batching or per-epoch
shuffling (see ``loop``); no augmentation or normalisation beyond scaling into [0, 1].
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxbp.core.types import Array, float_dtype

DATASETS = ("digits", "fashion-mnist", "mnist", "xor", "moons", "circle", "gauss", "spiral")
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package puts it
DATA_ENV = "JAXBP_DATA"  # a folder holding fashion-mnist/ and mnist/, overriding the system copy
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_CLASSES = 10
IDX_VALIDATION = 10_000  # Nielsen's 50k/10k split: the last 10000 of the training files...
IDX_LARGE = 20_000  # ...for training files of at least this many examples; smaller ones use 0.2
VALIDATION_FRACTION = 0.2  # default validation share of the training part, where IDX_VALIDATION does not apply
DIGITS_TEST = 360  # digits: size of the fixed test split
SYNTHETIC_SIZE = {"xor": 400, "moons": 1000, "circle": 1000, "gauss": 1000, "spiral": 1000}
SYNTHETIC_NOISE = 0.1
# TensorFlow Playground's sets, drawn in its plane [-6, 6]² and mapped onto [0, 1]² by (v + 6) / 12:
PLAYGROUND_HALF_WIDTH = 6.0
CIRCLE_RADIUS = 5.0  # circle: class 1 a disc of radius 0.5 R, class 0 a ring 0.7 R ≤ r ≤ R (radii uniform)
GAUSS_CENTRE, GAUSS_STD = 2.0, 0.5**0.5  # gauss: class 1 N((2, 2), 0.5 I), class 0 N((-2, -2), 0.5 I)
SPIRAL_RADIUS, SPIRAL_TURNS, SPIRAL_NOISE = 5.0, 1.75, 0.3  # spiral: two arms, noise U(-0.3, 0.3) per coordinate
TEST_FRACTION = 0.2  # synthetic sets: share held out for test
# IDX type code (third magic byte) -> big-endian dtype of the payload
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_FASHION_HELP = (
    f"install it with `apt-get install dataset-fashion-mnist`, or put the four IDX files in ${DATA_ENV}/fashion-mnist"
)
_MNIST_HELP = f"put the four IDX files in ${DATA_ENV}/mnist, or pass their folder's path to load_dataset"
_FOLDER_HELP = f"a folder of IDX files needs {', '.join(IDX_FILES)} (each may end in .gz)"


class Split(NamedTuple):
    """One part of a data set: ``X`` (n, n_in) floats in [0, 1]; ``Y`` (n, n_classes) one-hot, same dtype."""

    X: Array
    Y: Array


class Dataset(NamedTuple):
    """A named data set in three disjoint parts: fit on ``train``, choose on ``validation``, report ``test``."""

    name: str
    train: Split
    validation: Split
    test: Split

    @property
    def n_in(self) -> int:
        """Inputs per example: the width n_0 of a network's first layer."""
        return self.train.X.shape[1]

    @property
    def n_classes(self) -> int:
        """Classes: the width n_L of a network's output layer."""
        return self.train.Y.shape[1]


class _Raw(NamedTuple):
    """A source before splitting off validation: inputs (n, n_in) as stored, integer labels (n,)."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    n_classes: int
    scale: float  # inputs / scale lie in [0, 1]
    validation: int | float  # the default of load_dataset's ``validation`` for this source


def read_idx(path) -> np.ndarray:
    """The array stored in the IDX file at ``path`` (gzipped or not, told by its first bytes), native byte order.

    Raises ValueError naming the file when it is not IDX: wrong magic, unknown type code, or a payload
    whose length does not match the dimensions (truncated or padded)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: gzip data is corrupt or truncated ({err})") from err
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{path}: not an IDX file (it must start with 00 00 <type> <ndim>, got {data[:4].hex(' ')})")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X} (expected one of {known})")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: IDX header with {ndim} dimensions (ndim ≥ 1) is cut short at {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: payload is {len(data) - header} bytes but dimensions {dims} of {dtype.name} need {expected}"
            " (truncated or not an IDX file)"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_dataset(
    name_or_path: str | os.PathLike = "digits", *, validation: int | float | None = None, seed: int = 0, dtype="float32"
) -> Dataset:
    """The data set ``name_or_path`` (one of ``DATASETS``, or a folder of the four IDX files) as a ``Dataset``.

    ``validation``: examples taken from the end of the training part, as a count (0 = none) or a fraction
    in [0, 1); None = 10000 for IDX training files of ≥ 20000 examples (Nielsen's 50k/10k), else 0.2.
    Splits are fixed: the IDX files' own train/t10k; digits a fixed shuffle (test = 360 examples) that
    ``seed`` does not change. ``seed`` only generates the synthetic sets (xor, moons, circle, gauss, spiral:
    test = 20%, classes of equal size).
    ``dtype``: the float dtype of X and Y (float64 needs 64-bit JAX)."""
    dtype = float_dtype(dtype)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a data set name or a folder path, got {type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    raw = _load_raw(name, seed)
    (X, labels), n_train = raw.train, len(raw.train[1])
    n_fit = n_train - validation_count(validation, n_train, raw.validation)

    def split(inputs, classes) -> Split:
        # in NumPy, so that loading data compiles no XLA program; X is scaled as XLA did it before (times the
        # reciprocal of the scale, in float32 at least), so that every data set is the same bit for bit
        wide = np.promote_types(dtype, np.float32)
        X = (np.asarray(inputs, wide) * (np.asarray(1, wide) / np.asarray(raw.scale, wide))).astype(dtype)
        return Split(jnp.asarray(X), jnp.asarray(np.eye(raw.n_classes, dtype=dtype)[np.asarray(classes)]))

    return Dataset(name, split(X[:n_fit], labels[:n_fit]), split(X[n_fit:], labels[n_fit:]), split(*raw.test))


def validation_count(validation, n_train: int, default: int | float = VALIDATION_FRACTION) -> int:
    """How many of ``n_train`` examples ``validation`` (a count, a fraction in [0, 1), or None = ``default``) holds out.

    At least one training example must remain."""
    value = default if validation is None else validation
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"validation must be a count (int), a fraction (float) in [0, 1) or None, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not 0 <= value < 1:
            raise ValueError(f"validation as a fraction must be in [0, 1), got {value!r}")
        count = round(float(value) * n_train)
    elif value < 0:
        raise ValueError(f"validation as a count must be ≥ 0, got {value!r}")
    else:
        count = int(value)
    if count > n_train - 1:
        raise ValueError(
            f"validation={value!r} holds out {count} of {n_train} training examples; at least 1 must remain"
        )
    return count


def _load_raw(name: str, seed: int) -> _Raw:
    """The source ``name`` refers to, read or generated."""
    if name == "digits":
        return _digits()
    if name in SYNTHETIC_SIZE:
        return _synthetic(name, seed)
    if name == "fashion-mnist":
        override = Path(os.environ.get(DATA_ENV, "")) / "fashion-mnist" if os.environ.get(DATA_ENV) else None
        folder = override if override is not None and override.is_dir() else SYSTEM_FASHION_MNIST
        return _idx_folder(folder, f"Fashion-MNIST not found: {_FASHION_HELP}")
    if name == "mnist":
        if not os.environ.get(DATA_ENV):
            raise FileNotFoundError(f"MNIST not found: ${DATA_ENV} is not set; {_MNIST_HELP}")
        return _idx_folder(Path(os.environ[DATA_ENV]) / "mnist", f"MNIST not found: {_MNIST_HELP}")
    if os.path.isdir(name):
        return _idx_folder(Path(name), _FOLDER_HELP)
    raise ValueError(f"unknown data set {name!r}; expected one of: {', '.join(DATASETS)}, or a folder of IDX files")


def _holdout(X: np.ndarray, labels: np.ndarray, n_test: int, n_classes: int, scale: float) -> _Raw:
    """A source whose last ``n_test`` (already shuffled) examples are the test split."""
    n_train = len(labels) - n_test
    return _Raw((X[:n_train], labels[:n_train]), (X[n_train:], labels[n_train:]), n_classes, scale, VALIDATION_FRACTION)


def _sklearn(name: str, what: str):
    """``sklearn.datasets.<name>``, or one line saying which extra brings scikit-learn."""
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(f"{what} needs scikit-learn: pip install 'jaxbp[train]'") from None
    return getattr(sklearn.datasets, name)


def _digits() -> _Raw:
    """scikit-learn's bundled 8×8 digits (1797 examples, pixels 0..16) in a fixed shuffled order."""
    load_digits = _sklearn("load_digits", "the digits dataset")
    X, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))  # fixed: the test split never depends on seed
    return _holdout(X[order], labels[order], DIGITS_TEST, 10, 16.0)


def _synthetic(name: str, seed: int) -> _Raw:
    """XOR (4 Gaussian clusters at the unit square's corners, class = XOR of the corner bits), moons, or one of
    TensorFlow Playground's sets (``_playground``), from seed."""
    n = SYNTHETIC_SIZE[name]
    if name in ("circle", "gauss", "spiral"):
        X, labels = _playground(name, n, np.random.default_rng(seed))
    elif name == "xor":
        rng = np.random.default_rng(seed)
        corners = rng.permutation(np.repeat([[0, 0], [0, 1], [1, 0], [1, 1]], n // 4, axis=0))
        X = np.clip(corners + SYNTHETIC_NOISE * rng.standard_normal(corners.shape), 0.0, 1.0)
        labels = corners[:, 0] ^ corners[:, 1]
    else:
        make_moons = _sklearn("make_moons", "the moons dataset")
        X, labels = make_moons(n, noise=SYNTHETIC_NOISE, random_state=seed)
        X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    return _holdout(X, labels, round(TEST_FRACTION * n), 2, 1.0)


def _playground(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n/2 examples of each class as TensorFlow Playground draws them (circle: disc vs ring; gauss: two
    blobs; spiral: two interleaved arms of 1.75 turns, the second the first turned by π), in a random order,
    scaled from its plane [-6, 6]² onto [0, 1]² (clipped: only a gauss point beyond 5.6σ would reach it)."""
    half = n // 2
    labels = np.repeat([1, 0], half)
    if name == "circle":
        r = np.r_[rng.uniform(0, 0.5, half), rng.uniform(0.7, 1.0, half)] * CIRCLE_RADIUS
        angle = rng.uniform(0, 2 * np.pi, 2 * half)
        X = np.c_[r * np.sin(angle), r * np.cos(angle)]
    elif name == "gauss":
        centres = np.where(labels[:, None] == 1, GAUSS_CENTRE, -GAUSS_CENTRE)
        X = centres + GAUSS_STD * rng.standard_normal((2 * half, 2))
    else:
        s = rng.uniform(0, 1, 2 * half)  # where along its arm each point lies
        r, angle = SPIRAL_RADIUS * s, SPIRAL_TURNS * 2 * np.pi * s + np.pi * (labels == 0)
        X = np.c_[r * np.sin(angle), r * np.cos(angle)] + rng.uniform(-SPIRAL_NOISE, SPIRAL_NOISE, (2 * half, 2))
    order = rng.permutation(2 * half)
    X = np.clip((X + PLAYGROUND_HALF_WIDTH) / (2 * PLAYGROUND_HALF_WIDTH), 0.0, 1.0)
    return X[order], labels[order]


def _idx_folder(folder: Path, missing_help: str) -> _Raw:
    """The four MNIST-format IDX files in ``folder``: uint8 images (n, rows, cols) flattened, labels 0..9."""
    train_images, train_labels, test_images, test_labels = (_find(folder, f, missing_help) for f in IDX_FILES)
    X, X_test = _images(train_images), _images(test_images)
    if X.shape[1] != X_test.shape[1]:
        raise ValueError(f"{test_images}: {X_test.shape[1]} pixels per image, but {train_images} has {X.shape[1]}")
    train = (X, _labels(train_labels, len(X)))
    test = (X_test, _labels(test_labels, len(X_test)))
    return _Raw(train, test, IDX_CLASSES, 255.0, IDX_VALIDATION if len(X) >= IDX_LARGE else VALIDATION_FRACTION)


def _find(folder: Path, file: str, missing_help: str) -> Path:
    """``folder/file``, or ``folder/file.gz``; FileNotFoundError with ``missing_help`` when neither exists."""
    for path in (folder / file, folder / f"{file}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{missing_help} (no {folder / file}[.gz])")


def _images(path: Path) -> np.ndarray:
    """The uint8 images of an IDX file, one flattened row (rows*cols,) per image."""
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(f"{path}: images must be uint8 with shape (n, rows, cols), got {images.dtype} {images.shape}")
    return images.reshape(len(images), -1)


def _labels(path: Path, n_images: int) -> np.ndarray:
    """The labels of an IDX file, checked: 1-D integers in 0..IDX_CLASSES-1, one per image."""
    labels = read_idx(path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be 1-D integers, got {labels.dtype} {labels.shape}")
    if len(labels) != n_images:
        raise ValueError(f"{path}: {len(labels)} labels for {n_images} images")
    bad = (labels < 0) | (labels >= IDX_CLASSES)
    if bad.any():
        raise ValueError(f"{path}: label {labels[bad][0]} at index {np.argmax(bad)} is outside 0..{IDX_CLASSES - 1}")
    return labels
