"""Is an MLflow tracking server there, and does it let us in? One ``/health`` probe and one authenticated
request, with the standard library only.

What it is for: ``tracking.check_reachable`` (before a sweep), ``app.ui.wait_healthy`` (while a server
starts) and ``jaxbp server --check`` (a monitor's probe, which must answer without importing MLflow);
``login_problem`` tries the credentials MLflow's client would send (``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``, or ``MLFLOW_TRACKING_TOKEN``), since ``/health`` itself needs none;
``what_failed`` says in words why a sweep could not log (the server gone, or up but failing a request).
What it is not: no tracking, no user management (see services/tracking/README.md).
"""

from __future__ import annotations

import base64
import os
import re
import urllib.error
import urllib.request

USER, PASSWORD, TOKEN = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"
PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"  # the cheapest read of the REST API


def health_problem(url: str, timeout: float = 5.0) -> str | None:
    """None if the MLflow server at ``url`` answers ``/health`` with 200, else what went wrong."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return None if response.status == 200 else f"/health answered {response.status}"
    except (urllib.error.URLError, OSError) as err:
        return str(getattr(err, "reason", err))


def server_version(url: str, timeout: float = 5.0) -> str:
    """The MLflow version a healthy server at ``url`` reports (``/version``), or why it is not known."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/version", timeout=timeout) as response:
            return response.read().decode().strip()
    except urllib.error.HTTPError as err:
        return "version not shown without a login" if err.code == 401 else "unknown"
    except (urllib.error.URLError, OSError):
        return "unknown"


def login_problem(url: str, timeout: float = 10.0) -> str | None:
    """None unless the server at ``url`` refuses this process's credentials (HTTP 401 or 403 to one read of its
    REST API): then one line saying so, and which variable is missing. The password is never part of it."""
    if os.environ.get("MLFLOW_TRACKING_AUTH"):  # an auth plugin signs MLflow's requests: only MLflow can try it
        return None
    user, password, token = (os.environ.get(name) for name in (USER, PASSWORD, TOKEN))
    request = urllib.request.Request(f"{url.rstrip('/')}{PROBE}")
    if user and password:  # as MLflow's client: basic auth needs both, else a bearer token if there is one
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError):
        return None  # not a refusal: MLflow's client reports what goes wrong from here
    if status not in (401, 403):
        return None
    if user and password:
        who = f"user {user!r}"
    elif token:
        who = f"the token in {TOKEN}"
    else:
        missing = " and ".join(name for name, value in ((USER, user), (PASSWORD, password)) if not value)
        return f"tracking server {url} requires a login (HTTP {status}): set {missing}"
    if status == 401:
        return f"tracking server {url} refused the credentials of {who} (HTTP 401): check {USER} and {PASSWORD}"
    return f"tracking server {url} denies {who} access to its experiments (HTTP 403)"


def what_failed(uri: str, err: BaseException) -> str:
    """A failed logging request to ``uri`` in words, for a sweep's one-line message. For a server, one /health
    probe tells a server that is gone from one that is up but failed the request (an artifact upload: its
    artifact storage full or not writable); the cause is urllib3's when it gave one, else the error's start."""
    text = " ".join(str(err).split())
    cause = re.search(r"\(Caused by (.*)\)$", text)
    short = cause.group(1) if cause else f"{type(err).__name__}: {text[:200]}"
    if not uri.startswith(("http://", "https://")):
        return f"logging to tracking store {uri} failed ({short})"
    if health_problem(uri) is not None:
        return f"tracking store {uri} stopped answering ({short})"
    if "/mlflow-artifacts/" in text:
        return (f"tracking server {uri} is up but failed storing an artifact ({short}): is its artifact storage "
                f"full or not writable? its log says why")
    return f"tracking server {uri} is up but failed a request ({short}): its log says why"
