"""Adaptive searches: successive halving, Hyperband, population-based training and Optuna, inside the
compiled programs of ``training.cohort`` (the settings of each: ``settings``)."""

from __future__ import annotations


def make_search(spec, tracking_uri: str):
    """The ``Search`` of ``spec.mode`` (one of ``settings.ADAPTIVE``) for a sweep tracked in ``tracking_uri``,
    checked against both before anything runs (Optuna keeps its study in a database of its own beside it)."""
    if spec.mode in ("halving", "hyperband"):
        from jaxbp.sweeps.search.halving import SuccessiveHalving

        return SuccessiveHalving(spec)
    if spec.mode == "pbt":
        from jaxbp.sweeps.search.pbt import PopulationBasedTraining

        return PopulationBasedTraining(spec)
    if spec.mode == "optuna":
        from jaxbp.sweeps.search.optuna import OptunaSearch

        return OptunaSearch(spec, tracking_uri)
    raise ValueError(f"mode {spec.mode!r} is not an adaptive search")
