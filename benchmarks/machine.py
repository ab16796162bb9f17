"""What a benchmark ran on, in one line: shared by the scripts in benchmarks/ (run them from the repo root)."""

from __future__ import annotations

import os
import platform

import jax


def cpu_model() -> str:
    """The CPU model named in /proc/cpuinfo, or what ``platform`` knows where that file is missing."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_header() -> str:
    """One line naming what the numbers were measured on."""
    device = jax.devices()[0]
    return (
        f"jax {jax.__version__} | device: {device.device_kind} ({device.platform}, {jax.device_count()} device(s)) "
        f"| CPU: {cpu_model()} | cores: {os.cpu_count()}"
    )
