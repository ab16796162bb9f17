"""Authentication for ``jaxbp server --auth``: MLflow's own ``basic-auth`` app, configured safely.

What it is for: the options (``add_options``); the admin password, from ``MLFLOW_AUTH_ADMIN_PASSWORD`` or
``--admin-password-file`` (never the command line, never printed), checked as MLflow checks it on first start
(``check``, which creates nothing); then (``prepare``) the auth config that ``MLFLOW_AUTH_CONFIG_PATH`` points
at (default permission, user store, admin name, credential cache) and the Flask secret key CSRF needs, each a
0600 file under ``--data-dir``, and the environment the ``mlflow server --app-name basic-auth`` process gets.
What it is not: no user management (MLflow's client does it: ``mlflow.server.get_app_client("basic-auth")``, see
services/tracking/README.md), no TLS (a reverse proxy's job), no client side (see ``jaxbp.sweeps.health``).

MLflow's bootstrap rules (3.17, ``mlflow.server.auth``): the first start against an empty user store creates the
admin user with the configured password (≥ 12 characters, not the old published default); once the admin exists
the configured password is ignored (change it with ``update_user_password``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

PASSWORD_ENV, USER_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME"
CONFIG_ENV, SECRET_ENV = "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_FLASK_SERVER_SECRET_KEY"
PERMISSIONS = ("NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE")
# A team server: a new account sees nothing until an admin grants it experiments (MLflow's own default, READ,
# shows every experiment to every account, e.g. one made for a single CI job).
DEFAULT_PERMISSION = "NO_PERMISSIONS"
MIN_PASSWORD, LEGACY_PASSWORD = 12, "password1234"  # MLflow's rules for a new password
# MLflow checks a password with a deliberately slow hash at every request (0.7 s on these 2 busy cores), unless it
# may remember a good one for a while: a sweep makes dozens of requests. Changes made through MLflow's API
# reach the worker that made them at once, other workers (--workers > 1) within this time.
CACHE_SECONDS = 60
CONFIG_FILE, SECRET_FILE, USERS_DB = "basic_auth.ini", "flask-secret-key", "basic_auth.db"


class Auth(NamedTuple):
    """The checked settings of ``--auth``; ``password`` is None where it is not needed (the admin exists)."""

    admin: str
    password: str | None
    db_uri: str
    default_permission: str
    cache_seconds: int = CACHE_SECONDS


def add_options(p: argparse.ArgumentParser) -> None:
    """``--auth`` and its options, and ``--insecure-no-auth``."""
    p.add_argument("--auth", action="store_true", help="Require users and passwords: MLflow's basic-auth app. The "
                   f"first start creates the admin user; its password comes from ${PASSWORD_ENV} or "
                   "--admin-password-file (at least 12 characters), never from the command line.")
    p.add_argument("--admin-password-file", type=Path, metavar="FILE", help="With --auth: a file (mode 0600) whose "
                   f"first line is the admin password (instead of ${PASSWORD_ENV}); needed on the first start only.")
    p.add_argument("--admin-user", metavar="NAME", help=f"With --auth: the admin's user name (default: ${USER_ENV} "
                   "or admin).")
    p.add_argument("--auth-db-uri", metavar="URI", help="With --auth: where users and permissions live, any "
                   f"SQLAlchemy URI, e.g. the team's PostgreSQL (default: sqlite:///<data-dir>/{USERS_DB}).")
    p.add_argument("--default-permission", choices=PERMISSIONS, metavar="PERMISSION", help="With --auth: what "
                   f"every user may do on experiments nobody granted them: {', '.join(PERMISSIONS)} (default: "
                   f"{DEFAULT_PERMISSION}; MLflow's own default is READ).")
    p.add_argument("--auth-cache-seconds", type=int, metavar="SECONDS", help="With --auth: how long a worker "
                   "remembers a password it checked (default: 60; 0: the slow hash at every request). With "
                   "--workers > 1, the other workers learn of a changed password or deleted user this much later.")
    p.add_argument("--insecure-no-auth", action="store_true", help="Listen beyond this machine without "
                   "authentication (anyone who reaches the port can change and delete every run); prints a warning.")


def _admin_exists(db_uri: str, admin: str) -> bool | None:
    """Whether a SQLite user store already holds ``admin`` (read-only: creates nothing); None for other stores."""
    if not db_uri.startswith("sqlite:///"):
        return None
    path = Path(db_uri[len("sqlite:///"):])
    if not path.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            return con.execute("select 1 from users where username = ?", (admin,)).fetchone() is not None
    except sqlite3.Error:  # an empty file, or no users table yet
        return False


def _password(file: Path | None) -> str | None:
    if file is None:
        return os.environ.get(PASSWORD_ENV) or None
    try:
        mode = file.stat().st_mode & 0o777
        if mode & 0o077:
            raise ValueError(f"--admin-password-file {file} is readable by other users (mode {mode:o}): "
                             f"chmod 600 {file}")
        return (file.read_text().splitlines() or [""])[0] or None
    except OSError as err:
        raise ValueError(f"--admin-password-file {file}: {err.strerror}") from None


def check(args, data: Path) -> Auth | None:
    """The ``--auth`` settings, checked without creating anything; None without ``--auth`` (its options refused)."""
    if not args.auth:
        given = [flag for flag, value in (("--admin-password-file", args.admin_password_file), ("--admin-user",
                 args.admin_user), ("--auth-db-uri", args.auth_db_uri), ("--default-permission",
                 args.default_permission), ("--auth-cache-seconds", args.auth_cache_seconds)) if value is not None]
        if given:
            raise ValueError(f"{given[0]} only applies with --auth")
        return None
    if args.insecure_no_auth:
        raise ValueError("--auth and --insecure-no-auth contradict each other: pass one of them")
    if importlib.util.find_spec("flask_wtf") is None:  # MLflow's basic-auth app needs it (mlflow[auth])
        raise ValueError("--auth needs MLflow's basic-auth app, which is not installed: pip install 'jaxbp[server]'")
    admin = args.admin_user or os.environ.get(USER_ENV) or "admin"
    db_uri = args.auth_db_uri or f"sqlite:///{data / USERS_DB}"
    if "\n" in db_uri or "\n" in admin:
        raise ValueError("--auth-db-uri and --admin-user must be one line each")
    cache = CACHE_SECONDS if args.auth_cache_seconds is None else args.auth_cache_seconds
    if cache < 0:
        raise ValueError(f"--auth-cache-seconds must be ≥ 0, got {cache}")
    checked = Auth(admin, None, db_uri, args.default_permission or DEFAULT_PERMISSION, cache)
    exists = _admin_exists(db_uri, admin)
    if exists:  # MLflow ignores the password then: not read (the file may be gone), not passed on
        return checked
    password = _password(args.admin_password_file)
    where = f"set {PASSWORD_ENV} or pass --admin-password-file FILE"
    if password is None and exists is False:
        raise ValueError(f"--auth: the first start creates the admin user {admin!r} and needs its password: {where}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValueError(f"--auth: the admin password must be at least {MIN_PASSWORD} characters (MLflow's rule), "
                         f"it has {len(password)}: {where}")
    if password == LEGACY_PASSWORD:
        raise ValueError(f"--auth: the admin password is the default older MLflow versions published: {where}")
    return checked._replace(password=password)


def _private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by this user only (0600, also if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare(auth: Auth, data: Path) -> dict[str, str | None]:
    """Write the auth config (and the secret key, unless ``$MLFLOW_FLASK_SERVER_SECRET_KEY`` is set) under
    ``data``, 0600; return the server process's environment changes (None: remove the variable)."""
    config = data / CONFIG_FILE
    escape = str.maketrans({"%": "%%"})  # MLflow reads the file with configparser's interpolation
    _private(config, "# written by `jaxbp server --auth` at each start: change its options, not this file\n"
             f"[mlflow]\ndefault_permission = {auth.default_permission}\n"
             f"database_uri = {auth.db_uri.translate(escape)}\nadmin_username = {auth.admin.translate(escape)}\n"
             "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
             f"auth_cache_ttl_seconds = {auth.cache_seconds}\n")
    if auth.db_uri == f"sqlite:///{data / USERS_DB}" and not (data / USERS_DB).exists():
        _private(data / USERS_DB, "")  # password hashes: SQLite keeps an existing file's mode
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        key = data / SECRET_FILE
        if not key.is_file() or not key.read_text().strip():  # once: stable across restarts (CSRF tokens stay valid)
            _private(key, secrets.token_hex(32))
        secret = key.read_text().strip()
    return {CONFIG_ENV: str(config), SECRET_ENV: secret, USER_ENV: None, PASSWORD_ENV: auth.password}
