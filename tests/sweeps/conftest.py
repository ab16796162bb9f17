"""Every sweep test keeps its spool in its own temporary folder and ignores a user's MLFLOW_TRACKING_URI."""

import pytest


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
