"""TrainConfig: defaults in one place, every field checked, from_dict suggests the nearest key."""

import dataclasses

import pytest

from jaxbp import TrainConfig
from jaxbp.training.config import PER_CONFIG, PROGRAM, fields_of

pytestmark = pytest.mark.x64


def test_defaults_round_trip_through_a_dict():
    config = TrainConfig()
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["sizes"] == [64, 30, 10] and config.sizes == (64, 30, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.eta = 1.0


@pytest.mark.parametrize(
    "field,value,error,match",
    [("eta", 0, ValueError, "eta must be > 0, got 0"), ("eta", -1.0, ValueError, "eta must be > 0"),
     ("eta", "fast", TypeError, "eta must be a number, got str"),
     ("eta", float("nan"), ValueError, "eta must be a finite number"),
     ("eta", float("inf"), ValueError, "eta must be a finite number, got inf"),
     ("l2", float("-inf"), ValueError, "l2 must be a finite number"),
     ("batch_size", 0, ValueError, "batch_size must be ≥ 1"),
     ("batch_size", 2.5, TypeError, "batch_size must be an integer"),
     ("epochs", 0, ValueError, "epochs must be ≥ 1"), ("l2", -0.1, ValueError, "l2 must be ≥ 0"),
     ("seed", True, TypeError, "seed must be an integer"),
     ("data_seed", -1, ValueError, "data_seed must be ≥ 0"),
     ("data_seed", 1.5, TypeError, "data_seed must be an integer"),
     ("early_stopping", -1, ValueError, "early_stopping must be ≥ 0"),
     ("optimizer", "adamx", ValueError, "optimizer must be one of: sgd, momentum, nesterov, adam"),
     ("schedule", "step", ValueError, "schedule must be one of: constant, cosine"),
     ("gradients", "fd", ValueError, "gradients must be one of: bp, autodiff"),
     ("dtype", "float16", ValueError, "dtype must be one of: float32, float64"),
     ("init", "xavier", ValueError, "init must be one of: normal, scaled"),
     ("activation", "swish", ValueError, "unknown activation 'swish'"),
     ("sizes", (64,), ValueError, "at least 2 layers"),
     ("cost", "cross_entropy", None, None)],
)
def test_every_field_is_checked(field, value, error, match):
    if error is None:  # sigmoid output: cross-entropy is fine
        TrainConfig(**{field: value})
        return
    with pytest.raises(error, match=match):
        TrainConfig(**{field: value})


def test_pairings_are_checked():
    with pytest.raises(ValueError, match="cost log_likelihood needs outputs in"):
        TrainConfig(activation="relu", cost="log_likelihood")
    TrainConfig(activation="relu", output_activation="softmax", cost="log_likelihood")


def test_from_dict_suggests_the_nearest_key():
    with pytest.raises(ValueError, match="unknown TrainConfig key 'learning_rat'"):
        TrainConfig.from_dict({"learning_rat": 0.1})
    with pytest.raises(ValueError, match="unknown TrainConfig key 'batchsize'; did you mean 'batch_size'"):
        TrainConfig.from_dict({"batchsize": 10})


def test_every_field_is_declared_program_or_per_config():
    """A field added later must say whether it shapes the compiled program; this fails if it says neither."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    program, per_config = fields_of(PROGRAM), fields_of(PER_CONFIG)
    assert sorted(program + per_config) == sorted(names)
    assert not set(program) & set(per_config)
    assert {"eta", "l2", "seed"} <= set(per_config) and {"sizes", "batch_size", "optimizer"} <= set(program)
    with pytest.raises(ValueError, match="part must be"):
        fields_of("static")
