"""Chunk sizes: the candidates, the pick, the measurement on real training, the cache, the override."""

import dataclasses
import json

import pytest

import jaxbp
from jaxbp.training import caches, chunks
from jaxbp.training.config import TrainConfig
from jaxbp.training.deferred import block_steps


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(caches.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(chunks.CHUNK_ENV, raising=False)
    return tmp_path / "chunk_sizes.json"


@pytest.fixture(scope="module")
def digits():
    return jaxbp.load_dataset("digits")


def etas(k: int, **base) -> list[TrainConfig]:
    return [TrainConfig(eta=0.1 * (i + 1), epochs=1, **base) for i in range(k)]


def test_candidates_are_k_then_powers_of_two_down_to_the_minimum():
    assert chunks.candidates(256) == [256, 128, 64, 32, 16, 8]
    assert chunks.candidates(24) == [24, 16, 8]
    assert chunks.candidates(16) == [16, 8]
    assert chunks.candidates(9) == [9, 8]


def test_best_size_is_the_largest_within_the_tolerance_of_the_cheapest():
    assert chunks.best_size({64: 1.0, 32: 0.5, 16: 0.6}) == 32
    assert chunks.best_size({64: 0.52, 32: 0.5, 16: 0.6}) == 64  # 4 % dearer per config: fewer programs win
    assert chunks.best_size({8: 2.0}) == 8


def test_split_keeps_the_order_and_every_index():
    assert chunks.split([5, 3, 9, 1, 7], 2) == [[5, 3], [9, 1], [7]]
    assert chunks.split([1, 2], 8) == [[1, 2]]


def test_small_groups_are_not_measured(cache, digits):
    assert chunks.chunk_size(etas(chunks.MIN_CHUNK), digits) == chunks.MIN_CHUNK
    assert not cache.exists()


def test_measured_once_then_cached(cache, digits, monkeypatch):
    configs = etas(12, sizes=(64, 16, 10))
    size = chunks.chunk_size(configs, digits)
    assert size in chunks.candidates(12)
    (key, cached), = json.loads(cache.read_text()).items()
    assert cached == size and json.loads(key)[-1] == 12 and json.loads(key)[-2] is True  # shared mini-batches
    monkeypatch.setattr(chunks, "measure", lambda *a: pytest.fail("measured again"))
    assert chunks.chunk_size(configs, digits) == size
    other = [TrainConfig(eta=0.1, seed=i, data_seed=i, epochs=1, sizes=(64, 16, 10)) for i in range(12)]
    assert chunks.cache_key(other) != key  # own mini-batch orders: another program, measured on its own
    wide = [TrainConfig(eta=0.1 * (i + 1), epochs=1, sizes=(784, 16, 10)) for i in range(12)]
    assert json.loads(chunks.cache_key(wide))[-3] == f"deferred, B = {block_steps(wide[0])}"
    assert json.loads(key)[-3] == "plain"
    decayed = [dataclasses.replace(c, l2=0.5) for c in wide]  # λ > 0: the plain epoch, another measurement
    assert json.loads(chunks.cache_key(decayed))[-3] == "plain"


def test_measure_times_every_candidate_on_the_groups_own_configs(digits):
    per_config = chunks.measure(etas(10, sizes=(64, 16, 10)), digits, [10, 8])
    assert set(per_config) == {10, 8} and all(0 < s < 1 for s in per_config.values())


@pytest.mark.parametrize("value,size", [("4", 4), ("off", 12), ("100", 12)])
def test_the_environment_overrides(cache, digits, monkeypatch, value, size):
    monkeypatch.setenv(chunks.CHUNK_ENV, value)
    assert chunks.chunk_size(etas(12), digits) == size
    assert not cache.exists()


@pytest.mark.parametrize("value", ["0", "-3", "many", "nan"])
def test_a_bad_override_is_refused(cache, digits, monkeypatch, value):
    monkeypatch.setenv(chunks.CHUNK_ENV, value)
    with pytest.raises(ValueError, match=r"JAXBP_CHUNK must be a positive number of configs or \"off\""):
        chunks.chunk_size(etas(12), digits)
