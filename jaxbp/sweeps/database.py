"""Database tracking stores (PostgreSQL and the other SQLAlchemy URIs MLflow takes): shown without their password,
and checked by a real connection before a server or a sweep relies on them.

What it is for: ``display_uri`` (a URI safe to print: ``postgresql+psycopg://mlflow:***@db/mlflow``) and
``check_database`` (one line naming host:port and what went wrong: refused, unknown host, wrong password, no
password because ``PGPASSFILE`` is not set, a driver that is not installed).
What it is not: no schema handling (MLflow's store runs its own migrations; see ``jaxbp.app.migrate``), no
SQLite (``tracking.check_reachable`` checks its folder), no retries.
"""

from __future__ import annotations

import importlib.util
import re

CONNECT_TIMEOUT = 5  # seconds: libpq's connect_timeout for the check
SERVER_EXTRA = "pip install 'jaxbp[server]'"


def display_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (unchanged when it is not a database URL)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


def _reason(err: BaseException, password: str | None) -> str:
    """The driver's first line of ``err``, without libpq's 'connection to server at … failed:' preamble."""
    text = str(getattr(err, "orig", None) or err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(err).__name__
    line = re.sub(r"^(connection failed: )?connection to server at [^,]*, port \d+ failed: ", "", line)
    line = re.sub(r"^(FATAL|ERROR):\s+", "", line)
    if "no password supplied" in line:
        line += " (set PGPASSFILE to a libpq password file, e.g. dev-cluster.sh's DIR/pgpass)"
    return line.replace(password, "***") if password else line


def check_database(uri: str, *, timeout: int = CONNECT_TIMEOUT) -> None:
    """Connect to the database of ``uri`` once; raise ValueError in one line (never showing the password) if that
    fails. A driverless ``postgresql://`` means psycopg2 to SQLAlchemy: refused with the hint to write
    ``postgresql+psycopg://`` unless psycopg2 is installed."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    shown = display_uri(uri)
    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):
        raise ValueError(f"tracking store {shown} is not a database URL such as "
                         f"postgresql+psycopg://mlflow@127.0.0.1:5432/mlflow") from None
    postgres = url.get_backend_name() == "postgresql"
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        raise ValueError(f"tracking store {shown}: a driverless postgresql:// URI needs psycopg2, which is not "
                         f"installed; write postgresql+psycopg://… (psycopg 3: {SERVER_EXTRA})")
    where = f"{url.host or 'localhost'}:{url.port or 5432}" if postgres else (url.host or url.database or shown)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": timeout} if postgres else {})
    except ImportError as err:
        raise ValueError(f"tracking store {shown}: its driver {err.name or ''} is not installed; "
                         f"{SERVER_EXTRA} for PostgreSQL (postgresql+psycopg://)") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        kind = "PostgreSQL" if postgres else "the database"
        raise ValueError(f"cannot connect to {kind} at {where} (tracking store {shown}): "
                         f"{_reason(err, url.password)}") from None
    finally:
        engine.dispose()
