"""Is an MLflow tracking server there? One ``/health`` probe, with the standard library only.

What it is for: ``tracking.check_reachable`` (before a sweep), ``app.ui.wait_healthy`` (while a server
starts) and ``jaxbp server --check`` (a monitor's probe, which must answer without importing MLflow).
What it is not: no tracking.
"""

from __future__ import annotations

import urllib.error
import urllib.request


def health_problem(url: str, timeout: float = 5.0) -> str | None:
    """None if the MLflow server at ``url`` answers ``/health`` with 200, else what went wrong."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return None if response.status == 200 else f"/health answered {response.status}"
    except (urllib.error.URLError, OSError) as err:
        return str(getattr(err, "reason", err))


def server_version(url: str, timeout: float = 5.0) -> str:
    """The MLflow version a healthy server at ``url`` reports (``/version``), or "unknown"."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/version", timeout=timeout) as response:
            return response.read().decode().strip()
    except (urllib.error.URLError, OSError):
        return "unknown"
