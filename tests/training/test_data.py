"""Data loading: the IDX reader, IDX folders (by path, $JAXBP_DATA, Debian's Fashion-MNIST), digits, XOR, moons,
and TensorFlow Playground's circle, gauss and spiral."""

import gzip
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from helpers import FASHION_MNIST, require_package
from jaxbp.training import data
from jaxbp.training.data import DATASETS, Dataset, load_dataset, read_idx

pytestmark = pytest.mark.x64

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C, np.dtype(np.float64): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` in IDX format: magic 00 00 <type> <ndim>, big-endian dimension sizes, big-endian payload."""
    header = bytes([0, 0, CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False):
    raw = idx_bytes(np.asarray(array))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def idx_folder(folder, n_train=50, n_test=20, rows=3, cols=4, gz=False, seed=0):
    """A folder of the four MNIST-format files with random uint8 images and labels 0..9; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        arrays[part] = (rng.integers(0, 256, (n, rows, cols), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{part}-images-idx3-ubyte{suffix}", arrays[part][0], gz)
        write_idx(folder / f"{part}-labels-idx1-ubyte{suffix}", arrays[part][1], gz)
    return arrays


def assert_well_formed(ds: Dataset, dtype=jnp.float32):
    for split in (ds.train, ds.validation, ds.test):
        assert split.X.dtype == dtype and split.Y.dtype == dtype
        assert split.X.shape == (len(split.Y), ds.n_in) and split.Y.shape[1] == ds.n_classes
        assert bool(jnp.all((split.X >= 0) & (split.X <= 1)))
        assert bool(jnp.all(split.Y.sum(axis=1) == 1)) and bool(jnp.all((split.Y == 0) | (split.Y == 1)))


def sizes(ds: Dataset):
    return len(ds.train.X), len(ds.validation.X), len(ds.test.X)


# --- read_idx -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([3, 1, 4, 1, 5], np.uint8),
        np.array([[-70000, 1], [2, 70000]], np.int32),
        np.array([0.5, -1.25e300], np.float64),
    ],
    ids=["uint8-3d", "uint8-1d", "int32-2d", "float64-1d"],
)
def test_read_idx_round_trip(tmp_path, array, gz):
    out = read_idx(write_idx(tmp_path / "a.idx", array, gz))
    assert out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_tells_gzip_by_its_bytes_not_its_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain-name", array, gz=True)), array)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "name.gz", array, gz=False)), array)


def test_read_idx_refuses_truncated_padded_and_foreign_files(tmp_path):
    raw = idx_bytes(np.zeros((4, 5, 5), np.uint8))
    cases = {
        "truncated": (raw[:-7], r"payload is 93 bytes but dimensions \(4, 5, 5\) of uint8 need 100"),
        "padded": (raw + b"\0", "payload is 101 bytes"),
        "short-header": (raw[:9], "header with 3 dimensions"),
        "gz-truncated": (gzip.compress(raw)[:-10], "gzip data is corrupt or truncated"),
        "wrong-magic": (b"\x00\x01" + raw[2:], "not an IDX file"),
        "foreign": (b"hello, world\n", "not an IDX file"),
        "empty": (b"", "not an IDX file"),
        "type-code": (raw[:2] + b"\x0a" + raw[3:], "unknown IDX type code 0x0A"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message) as err:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)


# --- a folder of IDX files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_by_path(tmp_path, gz):
    arrays = idx_folder(tmp_path / "set", gz=gz)
    ds = load_dataset(str(tmp_path / "set"))
    assert_well_formed(ds)
    assert ds.name == str(tmp_path / "set") and (ds.n_in, ds.n_classes) == (12, 10)
    assert sizes(ds) == (40, 10, 20)  # fewer than 20000 training examples: validation 0.2, from the end
    images, labels = arrays["train"]
    np.testing.assert_allclose(ds.train.X, images[:40].reshape(40, 12) / 255, rtol=1e-6)
    np.testing.assert_array_equal(jnp.argmax(ds.validation.Y, axis=1), labels[40:])
    np.testing.assert_array_equal(jnp.argmax(ds.test.Y, axis=1), arrays["t10k"][1])


def test_validation_counts_and_fractions(tmp_path):
    idx_folder(tmp_path)
    assert sizes(load_dataset(tmp_path, validation=0)) == (50, 0, 20)
    assert load_dataset(tmp_path, validation=0).validation.X.shape == (0, 12)
    assert load_dataset(tmp_path, validation=0).validation.Y.shape == (0, 10)
    assert sizes(load_dataset(tmp_path, validation=7)) == (43, 7, 20)
    assert sizes(load_dataset(tmp_path, validation=0.5)) == (25, 25, 20)
    assert sizes(load_dataset(tmp_path, validation=49)) == (1, 49, 20)


@pytest.mark.parametrize(
    "validation, error, message",
    [
        (-1, ValueError, "count must be ≥ 0"),
        (50, ValueError, "holds out 50 of 50 training examples; at least 1 must remain"),
        (1.0, ValueError, r"fraction must be in \[0, 1\)"),
        (-0.1, ValueError, r"fraction must be in \[0, 1\)"),
        (float("nan"), ValueError, r"fraction must be in \[0, 1\)"),
        ("10", TypeError, "count \\(int\\), a fraction \\(float\\)"),
        (True, TypeError, "count \\(int\\), a fraction \\(float\\)"),
    ],
)
def test_bad_validation(tmp_path, validation, error, message):
    idx_folder(tmp_path)
    with pytest.raises(error, match=message):
        load_dataset(tmp_path, validation=validation)


def test_labels_must_fit_the_images(tmp_path):
    idx_folder(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    write_idx(labels, np.r_[np.zeros(49, np.uint8), 10])
    with pytest.raises(ValueError, match="label 10 at index 49 is outside 0..9") as err:
        load_dataset(tmp_path)
    assert str(labels) in str(err.value)
    write_idx(labels, np.zeros(49, np.uint8))
    with pytest.raises(ValueError, match="49 labels for 50 images") as err:
        load_dataset(tmp_path)
    assert str(labels) in str(err.value)


def test_images_must_be_uint8_and_agree_in_size(tmp_path):
    idx_folder(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((20, 3, 4), np.int16))
    with pytest.raises(ValueError, match="images must be uint8"):
        load_dataset(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((20, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="16 pixels per image, but .* has 12"):
        load_dataset(tmp_path)


def test_missing_idx_file(tmp_path):
    idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte\\[.gz\\]") as err:
        load_dataset(tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value) and "\n" not in str(err.value)


# --- named sets ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    require_package(FASHION_MNIST, "dataset-fashion-mnist")
    return load_dataset("fashion-mnist")


def test_fashion_mnist_from_the_debian_package(fashion):
    assert fashion.name == "fashion-mnist"
    assert sizes(fashion) == (50000, 10000, 10000) and (fashion.n_in, fashion.n_classes) == (784, 10)
    assert_well_formed(fashion)
    labels = read_idx(data.SYSTEM_FASHION_MNIST / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(jnp.argmax(fashion.validation.Y, axis=1), labels[50000:])  # the last 10000
    np.testing.assert_array_equal(fashion.test.Y.sum(axis=0), np.full(10, 1000))  # t10k: 1000 per class


def test_jaxbp_data_overrides_fashion_mnist_and_provides_mnist(tmp_path, monkeypatch):
    fashion = idx_folder(tmp_path / "fashion-mnist", n_train=30, n_test=5, gz=True)
    mnist = idx_folder(tmp_path / "mnist", n_train=25, n_test=4, rows=2, cols=2, seed=1)
    monkeypatch.setenv("JAXBP_DATA", str(tmp_path))
    ds = load_dataset("fashion-mnist", validation=0)
    assert sizes(ds) == (30, 0, 5)
    np.testing.assert_array_equal(jnp.argmax(ds.train.Y, axis=1), fashion["train"][1])
    ds = load_dataset("mnist")
    assert ds.name == "mnist" and sizes(ds) == (20, 5, 4) and ds.n_in == 4
    np.testing.assert_allclose(ds.test.X, mnist["t10k"][0].reshape(4, 4) / 255, rtol=1e-6)


def test_missing_named_sets_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("JAXBP_DATA", str(tmp_path))  # no fashion-mnist/ or mnist/ beneath it
    for name, needed in (("fashion-mnist", "apt-get install dataset-fashion-mnist"), ("mnist", "$JAXBP_DATA/mnist")):
        with pytest.raises(FileNotFoundError, match="not found") as err:
            load_dataset(name)
        message = str(err.value)
        assert needed in message and "$JAXBP_DATA/" in message and "\n" not in message
    monkeypatch.delenv("JAXBP_DATA")
    with pytest.raises(FileNotFoundError, match="JAXBP_DATA is not set.*pass their folder's path"):
        load_dataset("mnist")


def test_digits_fixed_split():
    from sklearn.datasets import load_digits

    ds = load_dataset()
    assert ds.name == "digits" and (ds.n_in, ds.n_classes) == (64, 10)
    assert sizes(ds) == (1150, 287, 360)
    assert_well_formed(ds)
    # The three splits partition the 1797 examples: same rows (as a multiset, labels attached) as the source.
    X, labels = load_digits(return_X_y=True)
    rows = np.concatenate([np.c_[np.asarray(s.X) * 16, np.argmax(s.Y, axis=1)] for s in ds[1:]])
    source = np.c_[X, labels]
    np.testing.assert_array_equal(rows[np.lexsort(rows.T)], source[np.lexsort(source.T)])
    other = load_dataset("digits", seed=5, validation=100)
    np.testing.assert_array_equal(other.test.X, ds.test.X)  # the test split ignores seed and validation
    assert sizes(other) == (1337, 100, 360)


@pytest.mark.parametrize("name, expected", [("xor", (256, 64, 80)), ("moons", (640, 160, 200)),
                                            ("circle", (640, 160, 200)), ("gauss", (640, 160, 200)),
                                            ("spiral", (640, 160, 200))])
def test_synthetic_sets(name, expected):
    ds = load_dataset(name, seed=3)
    assert (ds.n_in, ds.n_classes) == (2, 2) and sizes(ds) == expected
    assert_well_formed(ds)
    for split in ds[1:]:
        share = float(split.Y[:, 1].mean())
        assert 0.3 < share < 0.7, (name, share)
    same, other = load_dataset(name, seed=3), load_dataset(name, seed=4)
    np.testing.assert_array_equal(same.train.X, ds.train.X)
    assert not np.array_equal(other.train.X, ds.train.X)


def test_xor_class_is_the_xor_of_the_corner_bits():
    ds = load_dataset("xor", validation=0)
    X, classes = np.asarray(ds.train.X), np.asarray(jnp.argmax(ds.train.Y, axis=1))
    np.testing.assert_array_equal(classes, (X[:, 0] > 0.5) ^ (X[:, 1] > 0.5))  # noise 0.1: 5σ from the midline


def playground(name: str, seed: int = 0):
    """Every example of a Playground set (all three splits) in Playground's plane [-6, 6]², and its classes."""
    ds = load_dataset(name, seed=seed)
    X = np.concatenate([np.asarray(s.X, np.float64) for s in ds[1:]]) * 12 - 6  # undo (v + 6) / 12
    return X, np.concatenate([np.asarray(jnp.argmax(s.Y, axis=1)) for s in ds[1:]])


@pytest.mark.parametrize("name", ["circle", "gauss", "spiral"])
def test_playground_sets_have_equal_classes_and_follow_the_seed(name):
    X, classes = playground(name)
    assert np.bincount(classes).tolist() == [500, 500]  # n/2 of each class, before the split
    assert np.isfinite(X).all()
    again, other = playground(name), playground(name, seed=1)
    np.testing.assert_array_equal(again[0], X)
    assert not np.allclose(np.sort(other[0], axis=0), np.sort(X, axis=0))  # other points, not just another order


def test_circle_is_a_disc_inside_a_ring():
    X, classes = playground("circle", seed=2)
    r = np.hypot(*X.T)
    assert r[classes == 1].max() <= 2.5 + 1e-5  # the disc: radius 0.5 R, R = 5 (float32 rounding: 1e-5)
    inner = r[classes == 0]
    assert inner.min() >= 3.5 - 1e-5 and inner.max() <= 5 + 1e-5  # the ring: 0.7 R ≤ r ≤ R
    assert r[classes == 1].max() > 2.3 and inner.min() < 3.7  # radii fill their bands (500 uniform draws each)


def test_gauss_is_two_blobs_on_the_diagonal():
    X, classes = playground("gauss", seed=3)
    for c, centre in ((1, 2.0), (0, -2.0)):
        blob = X[classes == c]
        # the mean of 500 draws of N(centre, 0.5): standard error √0.5/√500 ≈ 0.032 per coordinate; 0.15 is 4.7 of them
        np.testing.assert_allclose(blob.mean(axis=0), [centre, centre], atol=0.15)
        np.testing.assert_allclose(blob.std(axis=0), [0.5**0.5] * 2, rtol=0.15)
    # the centres are 4√2 apart: a point crosses x + y = 0 with probability P(Z > 4) ≈ 3e-5
    assert np.mean(np.sign(X.sum(axis=1)) == np.where(classes == 1, 1, -1)) > 0.99


def test_spiral_points_lie_on_their_own_arm():
    X, classes = playground("spiral", seed=4)
    s = np.linspace(0, 1, 10001)  # the arms, densely: r = 5 s, angle = 1.75 · 2π s (+ π for class 0)
    for c, phase in ((1, 0.0), (0, np.pi)):
        arm = 5 * s[:, None] * np.c_[np.sin(3.5 * np.pi * s + phase), np.cos(3.5 * np.pi * s + phase)]
        points = X[classes == c]
        distance = np.sqrt(((points[:, None, :] - arm[None]) ** 2).sum(-1)).min(axis=1)
        # uniform noise of ±0.3 per coordinate moves a point at most 0.3·√2 ≈ 0.424 off its arm; the arm's
        # samples lie ≤ 1e-4 · |d(point)/ds| ≤ 1e-4 · √(5² + (5 · 3.5π)²) ≈ 0.0055 apart, so the nearest sample
        # is at most 0.0028 farther than the arm itself
        assert distance.max() <= 0.3 * 2**0.5 + 0.003
        others = X[classes != c]
        away = np.sqrt(((others[:, None, :] - arm[None]) ** 2).sum(-1)).min(axis=1)
        assert np.mean(away > 0.3 * 2**0.5 + 0.003) > 0.9  # the other arm's points lie off this one (but near 0)


def test_dtype():
    ds = load_dataset("xor", dtype="float64")
    assert ds.train.X.dtype == jnp.float64 and ds.test.Y.dtype == jnp.float64
    with pytest.raises(TypeError, match="float dtype"):
        load_dataset("xor", dtype="int32")


def test_unknown_name_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'cifar'; expected one of: digits, fashion-mnist") as err:
        load_dataset("cifar")
    assert all(name in str(err.value) for name in DATASETS) and "folder of IDX files" in str(err.value)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset(str(tmp_path / "no-such-folder"))
    with pytest.raises(TypeError, match="name_or_path must be"):
        load_dataset(3)
    with pytest.raises(TypeError, match="seed must be an integer"):
        load_dataset("xor", seed=1.5)
    with pytest.raises(ValueError, match="seed must be ≥ 0"):
        load_dataset("xor", seed=-1)
