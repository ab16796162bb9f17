"""Adaptive searches: successive halving, Hyperband, population-based training and Optuna, inside the
compiled programs of ``training.cohort`` (the settings of each: ``settings``)."""

from __future__ import annotations


def make_search(spec):
    """The ``Search`` of ``spec.mode`` (one of ``settings.ADAPTIVE``), checked against the spec."""
    if spec.mode in ("halving", "hyperband"):
        from jaxbp.sweeps.search.halving import SuccessiveHalving

        return SuccessiveHalving(spec)
    if spec.mode == "pbt":
        from jaxbp.sweeps.search.pbt import PopulationBasedTraining

        return PopulationBasedTraining(spec)
    if spec.mode == "optuna":
        from jaxbp.sweeps.search.optuna import OptunaSearch

        return OptunaSearch(spec)
    raise ValueError(f"mode {spec.mode!r} is not an adaptive search")
