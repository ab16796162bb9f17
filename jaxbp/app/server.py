"""The team's MLflow tracking server: ``jaxbp server`` starts ``mlflow server`` and waits
until it answers ``/health``; ``--check URL`` is a one-line health check for scripts and monitors.

What it is for: one documented way to run the shared server: a backend store (SQLite under ``--data-dir`` by
default, any SQLAlchemy URI such as PostgreSQL), artifacts served (proxied) by the server from
``--artifacts-destination``, users and passwords with ``--auth`` (MLflow's basic-auth app, set up by
``jaxbp.app.auth``), loopback unless told otherwise, and a refusal to listen beyond this machine without
``--allowed-hosts`` and without ``--auth`` (or an explicit ``--insecure-no-auth``). The command line itself is
``jaxbp.app.ui.server_command``'s.
What it is not: no tracking logic (see ``jaxbp.sweeps.tracking``), no process supervision and no TLS: run it under
systemd or a container, behind a reverse proxy that terminates TLS for anything beyond a trusted network (see
services/tracking/README.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from jaxbp.app import auth
from jaxbp.sweeps.database import display_uri
from jaxbp.sweeps.health import health_problem, server_version

PROG = "jaxbp server"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2, like `jaxbp`
        self.exit(2, f"serve: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run the team's MLflow tracking server (mlflow server) and wait until it "
                "is healthy; or check one with --check.")
    p.add_argument("--data-dir", type=Path, metavar="DIR", default=Path("mlflow-server"),
                   help="Where the default store and artifacts live (default: ./mlflow-server).")
    p.add_argument("--backend-store-uri", metavar="URI", help="Runs, params and metrics: any SQLAlchemy URI, e.g. "
                   "postgresql+psycopg://mlflow@db/mlflow, its password in $PGPASSFILE (default: sqlite:///<data-dir>/mlflow.db).")
    p.add_argument("--artifacts-destination", metavar="URI", help="Where the server stores the artifacts it "
                   "proxies: a folder or e.g. s3://bucket/mlflow (default: <data-dir>/artifacts).")
    p.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default: 127.0.0.1, loopback). "
                   "Any other needs --allowed-hosts, and --auth or --insecure-no-auth.")
    p.add_argument("--port", type=int, metavar="PORT", default=5000, help="Port (default: 5000).")
    p.add_argument("--allowed-hosts", metavar="HOSTS", help="Host headers clients may use, comma-separated, e.g. "
                   "mlflow.example.com,10.0.0.7:5000 (MLflow's --allowed-hosts; replaces its localhost default).")
    p.add_argument("--cors-allowed-origins", metavar="ORIGINS", help="Browser origins other than localhost "
                   "allowed to change state, comma-separated (MLflow's --cors-allowed-origins).")
    p.add_argument("--workers", type=int, metavar="N", default=1, help="Server worker processes (default: 1).")
    p.add_argument("--timeout", type=float, metavar="SECONDS", default=90.0,
                   help="Seconds to wait for /health (default: 90).")
    p.add_argument("--check", nargs="?", const="", metavar="URL", help="Only check that the server at URL "
                   "(default: http://<host>:<port>) answers /health: one line, exit status 0 or 1.")
    auth.add_options(p)
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_of(host: str, port: int, *, probe: bool = False) -> str:
    """http://host:port; with ``probe``, a wildcard host (0.0.0.0, ::) is reached through loopback."""
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1" if probe else socket.gethostname()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check(url: str) -> int:
    """Print one line saying whether ``url`` answers /health (and its MLflow version); 0 if it does, else 1."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--check needs an http(s):// URL, got {url!r}")
    url = url.rstrip("/")
    if problem := health_problem(url):
        print(f"unhealthy: {url} does not answer /health ({problem})", flush=True)
        return 1
    print(f"healthy: {url} (MLflow {server_version(url)})", flush=True)
    return 0


def resolve(args) -> dict:
    """The server's settings from the arguments, checked: store, artifacts, host, and the security options."""
    if not is_loopback(args.host) and not args.allowed_hosts:
        raise ValueError(f"--host {args.host} listens beyond this machine: pass --allowed-hosts with the host "
                         f"names clients use (e.g. mlflow.example.com,10.0.0.7:{args.port})")
    if not is_loopback(args.host) and not (args.auth or args.insecure_no_auth):
        raise ValueError(f"--host {args.host} listens beyond this machine without authentication: pass --auth "
                         "(users and passwords, see services/tracking/README.md) or, on a network you trust, "
                         "--insecure-no-auth")
    if args.workers < 1 or not 0 < args.port < 65536:
        raise ValueError("--workers must be ≥ 1 and --port in 1..65535")
    data = args.data_dir.expanduser().resolve()
    users = auth.check(args, data)  # before anything is created
    uri = args.backend_store_uri or f"sqlite:///{data / 'mlflow.db'}"
    artifacts = args.artifacts_destination or str(data / "artifacts")
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"--backend-store-uri must be a database (sqlite:///…, postgresql+psycopg://…), not {uri}")
    from jaxbp.sweeps.tracking import check_reachable  # imported here: --check stays fast (no jax, no mlflow)

    server_store = not uri.startswith("sqlite:")
    if server_store:  # a database server is connected to before anything is created
        check_reachable(uri)
    if args.backend_store_uri is None or args.artifacts_destination is None or users:
        data.mkdir(parents=True, exist_ok=True)
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    if not server_store:
        check_reachable(uri)
    return {"uri": uri, "host": args.host, "port": args.port, "workers": args.workers,
            "artifacts_destination": artifacts, "allowed_hosts": args.allowed_hosts,
            "cors_allowed_origins": args.cors_allowed_origins, "auth": users,
            "env": auth.prepare(users, data) if users else {},
            "insecure": not users and not is_loopback(args.host)}


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a just-stopped server's TIME_WAIT is free
        try:
            s.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def serve(settings: dict, timeout: float = 90.0) -> int:
    """Run the server until Ctrl-C or SIGTERM (0), or until it dies (1); its own log goes to stderr."""
    from jaxbp.app.ui import start_server, stop_on_sigterm, stop_server, wait_healthy

    host, port = settings["host"], settings["port"]
    if not _port_free(host, port):
        raise OSError(f"port {port} on {host} is already in use; pick another with --port")
    options = {k: settings[k] for k in ("workers", "artifacts_destination", "allowed_hosts", "cors_allowed_origins")}
    users = settings["auth"]
    server = start_server(settings["uri"], host=host, port=port, log=sys.stderr, env=settings["env"],
                          app_name="basic-auth" if users else None, **options)
    stop_on_sigterm()
    try:
        wait_healthy(url_of(host, port, probe=True), server, timeout)
        url = url_of(host, port)
        login = (f", basic-auth: admin {users.admin!r}, default permission {users.default_permission}, users in "
                 f"{display_uri(users.db_uri)}") if users else ""
        print(f"MLflow tracking server ready: {url}  (store {display_uri(settings['uri'])}, artifacts "
              f"{settings['artifacts_destination']}{login})", flush=True)
        login = "  with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD set" if users else ""
        print(f"clients: MLFLOW_TRACKING_URI={url}  or  jaxbp sweep SPEC --tracking-uri {url}{login}; Ctrl-C stops it",
              flush=True)
        status = server.wait()
        print(f"serve: mlflow server exited with status {status}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as err:
        print(f"serve: error: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_server(server)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.check is not None:
            return check(args.check or url_of(args.host, args.port, probe=True))
        settings = resolve(args)
        if settings["insecure"]:
            print(f"serve: warning: --insecure-no-auth: anyone who reaches {args.host}:{args.port} can read, change "
                  "and delete every run (no authentication)", file=sys.stderr, flush=True)
        return serve(settings, args.timeout)
    except (ValueError, OSError) as err:
        print(f"serve: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
