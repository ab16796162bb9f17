"""The Ray executor on a local Ray (2 CPUs, no dashboard): the same results as the local executor, children
logged by the workers under one parent, and a worker killed mid-sweep does not lose or duplicate a config."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient

from jaxbp.sweeps.executors.ray import RayExecutor
from jaxbp.sweeps.run import run_sweep
from jaxbp.sweeps.spec import parse_spec

pytestmark = pytest.mark.ray

JAXBP = str(Path(sys.executable).with_name("jaxbp"))
SPEC = {"name": "ray", "dataset": "xor", "base": {"sizes": [2, 4, 2], "epochs": 3, "batch_size": 8},
        "sweep": {"eta": [0.5, 3.0], "hidden": [[4], [8]]}}


@pytest.fixture(scope="module")
def executor():
    ex = RayExecutor(num_cpus=2)
    yield ex
    ray.shutdown()


def _summary(result):
    return sorted((r.name, r.status, round(r.value, 6)) for r in result.rows)


def test_ray_equals_local_and_workers_log_under_one_parent(executor, tmp_path):
    spec = parse_spec(SPEC)
    on_ray = run_sweep(spec, f"sqlite:///{tmp_path / 'ray.db'}", executor=executor)
    local = run_sweep(spec, f"sqlite:///{tmp_path / 'local.db'}")
    assert _summary(on_ray) == _summary(local) and len(on_ray.rows) == 4
    client = MlflowClient(f"sqlite:///{tmp_path / 'ray.db'}")
    children = client.search_runs([on_ray.experiment_id], f"tags.`mlflow.parentRunId` = '{on_ray.parent_run_id}'")
    assert sorted(int(c.data.tags["jaxbp.config_index"]) for c in children) == [0, 1, 2, 3]
    assert client.get_run(on_ray.parent_run_id).data.tags["jaxbp.sweep_status"] == "finished"


def _worker_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"ray::train_group" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


def test_a_worker_killed_mid_sweep_is_retried_and_no_config_is_lost_or_doubled(executor, tmp_path):
    spec = parse_spec({**SPEC, "name": "ray-kill", "base": {**SPEC["base"], "epochs": 60}})
    killed, stop = [], threading.Event()

    def kill_one_worker():
        while not stop.is_set() and not killed:
            for pid in _worker_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    try:
        result = run_sweep(spec, f"sqlite:///{tmp_path / 'm.db'}", executor=executor)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a group"
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    children = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert sorted(int(c.data.tags["jaxbp.config_index"]) for c in children) == [0, 1, 2, 3]
    assert all(c.info.status == "FINISHED" for c in children)


def test_unreachable_ray_address_is_one_clear_line_and_status_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    done = subprocess.run([JAXBP, "sweep", "experiments/quickstart.toml", "--executor", "ray", "--address",
                           f"127.0.0.1:{port}", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 2
    assert done.stderr.startswith(f"jaxbp: error: cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.db").exists()
