"""jaxbp server --auth: a real `mlflow server --app-name basic-auth` on loopback (SQLite in tmp_path) refuses
unauthenticated requests, wrong passwords and read-only users in one line before anything trains, lets an
authorised user's sweep log normally, and keeps the admin password out of argv, logs and printed lines;
the exposure refusals and the --insecure-no-auth warning without a server."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from helpers import free_port, listening
from jaxbp.app import auth
from jaxbp.app.batch import run_batch
from jaxbp.app.cli import main as jaxbp
from jaxbp.app.server import main, parser
from jaxbp.sweeps.executors.local import LocalExecutor
from jaxbp.sweeps.health import server_version
from jaxbp.sweeps.spec import load_spec
from jaxbp.sweeps.spool import Spool

pytestmark = pytest.mark.server

ADMIN_PASSWORD = "admin-Secret-4-tests"
USERS = {"alice": "alice-password-1", "rob": "rob-password-22"}  # alice may write the team's experiment, rob read
SPEC = ('name = "{name}"\ndataset = "xor"\n[base]\nsizes = [2, 4, 2]\nepochs = 2\nbatch_size = 8\n'
        '[sweep]\neta = [0.5, 3.0]\n')
TEAM = "team-sweep"


def spec_file(folder: Path, name: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name))
    return path


def as_user(monkeypatch, user: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def status_of(url: str, auth_header: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": auth_header} if auth_header else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`jaxbp server --auth` with the admin password in a 0600 file, on a free port; the admin made alice and
    rob and the team's experiment (alice EDIT, rob READ) through MLflow's own client."""
    root = tmp_path_factory.mktemp("auth")
    data, port, secret = root / "data", free_port(), root / "admin-password"
    secret.write_text(ADMIN_PASSWORD + "\n")
    secret.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_AUTH", "MLFLOW_TRACKING", "MLFLOW_FLASK"))}
    log = root / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("jaxbp")), "server", "--auth", "--data-dir",
                                 str(data), "--port", str(port), "--admin-password-file", str(secret)], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    lines, deadline = [], time.monotonic() + 120
    while not any("ready" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines) + log.read_text()[-3000:]
        lines.append(proc.stdout.readline())
    lines.append(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        as_user(mp, "admin", ADMIN_PASSWORD)
        admin = get_app_client("basic-auth", tracking_uri=url)
        for user, password in USERS.items():
            admin.create_user(user, password)
        team = MlflowClient(url).create_experiment(TEAM)  # as services/tracking/README.md shows
        admin.grant_user_permission("alice", "experiment", team, "EDIT")
        admin.grant_user_permission("rob", "experiment", team, "READ")
    yield {"proc": proc, "url": url, "data": data, "printed": "".join(lines), "log": log, "team": team}
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not listening(port)


def never_train(*args, **kwargs):
    raise AssertionError("a config was trained")


def runs_in(server, experiment_id: str) -> list:
    with pytest.MonkeyPatch.context() as mp:
        as_user(mp, "admin", ADMIN_PASSWORD)
        return MlflowClient(server["url"]).search_runs([experiment_id])


def test_an_unauthenticated_request_gets_401_and_health_stays_open(server):
    url = server["url"]
    api = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status_of(api) == 401
    assert status_of(api, "Basic " + b64encode(b"alice:not-her-password").decode()) == 401
    assert status_of(api, "Basic " + b64encode(f"alice:{USERS['alice']}".encode()).decode()) == 200
    assert status_of(f"{url}/health") == 200
    assert server_version(url) == "version not shown without a login"  # what `jaxbp server --check` then says
    assert f"MLflow tracking server ready: {url}" in server["printed"]
    assert "basic-auth: admin 'admin', default permission NO_PERMISSIONS" in server["printed"]


def test_a_wrong_password_is_one_line_and_status_2_with_nothing_created(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(LocalExecutor, "run", never_train)
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)
    as_user(monkeypatch, "alice", "wrong-password-77")
    assert jaxbp(["sweep", str(spec_file(tmp_path, "wrong-password")), "--tracking-uri", server["url"]]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"jaxbp: error: tracking server {server['url']} refused the credentials of user 'alice' "
                            "(HTTP 401): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD\n")
    assert "wrong-password-77" not in captured.out + captured.err
    with pytest.MonkeyPatch.context() as mp:
        as_user(mp, "admin", ADMIN_PASSWORD)
        assert MlflowClient(server["url"]).get_experiment_by_name("wrong-password") is None
    assert not (tmp_path / "spool").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("variables,missing", [
    ({}, "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
    ({"MLFLOW_TRACKING_USERNAME": "alice"}, "set MLFLOW_TRACKING_PASSWORD"),
])
def test_missing_credentials_are_named_by_sweep_and_batch(server, tmp_path, monkeypatch, capsys, variables, missing):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    spec = spec_file(tmp_path, "no-login")
    expected = f"jaxbp: error: tracking server {server['url']} requires a login (HTTP 401): {missing}\n"
    assert jaxbp(["sweep", str(spec), "--tracking-uri", server["url"]]) == 2
    assert capsys.readouterr().err == expected
    assert jaxbp(["batch", str(spec), "--tracking-uri", server["url"], "--log-dir", str(tmp_path / "logs")]) == 2
    assert capsys.readouterr().err == expected


def test_a_read_only_user_cannot_create_runs_one_line_and_nothing_trained(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(LocalExecutor, "run", never_train)
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)
    as_user(monkeypatch, "rob", USERS["rob"])
    before = len(runs_in(server, server["team"]))
    spec = spec_file(tmp_path, TEAM)
    assert jaxbp(["sweep", str(spec), "--tracking-uri", server["url"]]) == 2
    err = capsys.readouterr().err
    assert err == (f"jaxbp: error: tracking server {server['url']} does not let user 'rob' create runs in experiment "
                   f"'{TEAM}' (HTTP 403): ask an admin for EDIT on that experiment (services/tracking/README.md)\n")
    (entry,) = run_batch([spec], server["url"], log_dir=tmp_path / "logs")  # the batch: that spec failed, same line
    assert entry.status == "failed" and entry.message == err.removeprefix("jaxbp: error: ").strip()
    assert "Traceback" not in entry.log.read_text()
    assert len(runs_in(server, server["team"])) == before
    assert not Spool(load_spec(spec).digest).root.exists()


def test_an_authorised_sweep_logs_every_config_once(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXBP_SPOOL", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)
    as_user(monkeypatch, "alice", USERS["alice"])
    assert jaxbp(["sweep", str(spec_file(tmp_path, TEAM)), "--tracking-uri", server["url"]]) == 0
    assert USERS["alice"] not in capsys.readouterr().out
    runs = runs_in(server, server["team"])
    parents = [r for r in runs if r.data.tags.get("jaxbp.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[-1].info.run_id]
    assert len(parents) == 1 and parents[0].data.tags["jaxbp.sweep_status"] == "finished"
    assert sorted(r.data.tags["jaxbp.config_index"] for r in children) == ["0", "1"]
    assert sorted(r.data.params["eta"] for r in children) == ["0.5", "3.0"]
    assert all("validation_accuracy" in r.data.metrics for r in children)


def test_the_admin_password_is_in_no_argv_log_output_or_file(server):
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    assert "mlflow server" in ps and "--app-name basic-auth" in ps  # the server's argv is in the listing
    for text in (ps, server["log"].read_text(), server["printed"]):
        assert ADMIN_PASSWORD not in text
    assert "Created admin user 'admin'" in server["log"].read_text()
    data = server["data"]
    for name in (auth.CONFIG_FILE, auth.SECRET_FILE, auth.USERS_DB):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    config = (data / auth.CONFIG_FILE).read_text()
    assert "default_permission = NO_PERMISSIONS" in config and "auth_cache_ttl_seconds = 60" in config
    assert ADMIN_PASSWORD not in config


def test_a_restart_needs_no_password_once_the_admin_exists(server):
    gone = server["data"] / "deleted-after-the-first-start"
    args = parser().parse_args(["--auth", "--admin-password-file", str(gone)])
    restarted = auth.check(args, server["data"])
    assert restarted.password is None and restarted.admin == "admin"  # not read, not passed on: MLflow ignores it
    args.admin_user = "newcomer"  # an admin not there yet: the first start of that admin needs the file
    with pytest.raises(ValueError, match="deleted-after-the-first-start: No such file"):
        auth.check(args, server["data"])
    assert auth.prepare(restarted, server["data"])[auth.PASSWORD_ENV] is None


@pytest.mark.parametrize("args,message", [
    (["--host", "0.0.0.0", "--allowed-hosts", "mlflow.example.com"],
     "--host 0.0.0.0 listens beyond this machine without authentication: pass --auth"),
    (["--auth", "--insecure-no-auth"], "--auth and --insecure-no-auth contradict each other"),
    (["--auth"], "the first start creates the admin user 'admin' and needs its password: set "
                 "MLFLOW_AUTH_ADMIN_PASSWORD or pass --admin-password-file FILE"),
    (["--admin-user", "boss"], "--admin-user only applies with --auth"),
    (["--auth", "--auth-cache-seconds", "-1"], "--auth-cache-seconds must be ≥ 0, got -1"),
])
def test_refusals_are_one_line_and_status_2_with_nothing_created(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    assert main(["--data-dir", str(tmp_path / "d"), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("serve: error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
    assert not (tmp_path / "d").exists()


def test_bad_admin_passwords_are_refused_without_showing_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(auth.PASSWORD_ENV, "short-pw")
    assert main(["--data-dir", str(tmp_path / "d"), "--auth"]) == 2
    err = capsys.readouterr().err
    assert "at least 12 characters" in err and "short-pw" not in err
    secret = tmp_path / "password"
    secret.write_text("a-long-enough-password\n")
    secret.chmod(0o644)
    assert main(["--data-dir", str(tmp_path / "d"), "--auth", "--admin-password-file", str(secret)]) == 2
    err = capsys.readouterr().err
    assert f"--admin-password-file {secret} is readable by other users (mode 644): chmod 600" in err
    assert "a-long-enough-password" not in err and not (tmp_path / "d").exists()


def test_auth_without_mlflows_auth_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "flask_wtf" else
                        real(name, *args))
    assert main(["--data-dir", str(tmp_path / "d"), "--auth"]) == 2
    assert capsys.readouterr().err == ("serve: error: --auth needs MLflow's basic-auth app, which is not installed: "
                                       "pip install 'jaxbp[server]'\n")
    assert not (tmp_path / "d").exists()


def test_insecure_no_auth_prints_its_warning(tmp_path, capsys):
    port = free_port()
    with socket.socket() as busy:  # the port is taken: the launcher stops after the warning, before mlflow starts
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert main(["--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--allowed-hosts", "mlflow.example.com",
                     "--port", str(port), "--insecure-no-auth"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"serve: warning: --insecure-no-auth: anyone who reaches 0.0.0.0:{port} can read, change and "
                      "delete every run (no authentication)")
    assert err[1].startswith(f"serve: error: port {port} on 0.0.0.0 is already in use") and len(err) == 2


def test_prepare_writes_private_files_and_a_stable_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.SECRET_ENV, raising=False)
    users = auth.Auth("admin", "x" * 12, "postgresql+psycopg://mlflow:p%40ss@db/auth", "READ", cache_seconds=0)
    first = auth.prepare(users, tmp_path)
    assert auth.prepare(users, tmp_path)[auth.SECRET_ENV] == first[auth.SECRET_ENV]  # kept across restarts
    config = (tmp_path / auth.CONFIG_FILE).read_text()
    assert "database_uri = postgresql+psycopg://mlflow:p%%40ss@db/auth" in config  # configparser's escaping
    assert "default_permission = READ" in config and "auth_cache_ttl_seconds = 0" in config
    assert first[auth.CONFIG_ENV] == str(tmp_path / auth.CONFIG_FILE) and first[auth.USER_ENV] is None
    assert json.dumps(first)  # plain strings (or None) for the server's environment


def test_jaxbp_ui_refuses_to_listen_beyond_this_machine(tmp_path, capsys):
    assert jaxbp(["ui", "--host", "0.0.0.0", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    err = capsys.readouterr().err
    assert err == ("jaxbp: error: jaxbp ui serves this machine only, --host 0.0.0.0 is not loopback: share a store "
                   "with `jaxbp server --auth` (services/tracking/README.md)\n")
    assert not (tmp_path / "mlflow.db").exists()
