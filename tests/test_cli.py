"""The command line: jaxbp gradcheck's table and exit codes; bad input is one line and exit status 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from jaxbp.cli import main

JAXBP = str(Path(sys.executable).with_name("jaxbp"))


def test_gradcheck_passes_and_prints_a_row_per_layer(capsys):
    assert main(["gradcheck", "--sizes", "9,7,1,3", "--activation", "tanh", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "7×9" in out and "1×7" in out and "3×1" in out and "all checks passed" in out


def test_gradcheck_fails_with_status_1_when_a_tolerance_is_exceeded(capsys):
    # float32 finite differences cannot meet 1e-12: the exit status must say so
    assert main(["gradcheck", "--sizes", "6,5,3", "--dtype", "float32", "--fd-rtol", "1e-12"]) == 1
    assert "some checks exceed their tolerance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [(["--sizes", "784"], "sizes needs at least 2 layers"),
     (["--sizes", "5,0,2"], "sizes must be positive integers"),
     (["--sizes", "5,x"], "--sizes must be layer widths such as 784,30,10, got '5,x'"),
     (["--activation", "sigmod"], "unknown activation 'sigmod'; expected one of: sigmoid"),
     (["--cost", "mse"], "unknown cost 'mse'; expected one of: quadratic"),
     (["--init", "xavier"], "unknown init scheme 'xavier'"),
     (["--cost", "cross_entropy", "--activation", "tanh"], "cost cross_entropy needs outputs in (0, 1)"),
     (["--dtype", "int8"], "--dtype must be one of: float64, float32"),
     (["--batch-size", "0"], "--batch-size"),
     (["--frobnicate"], "No such option: --frobnicate")],
)
def test_bad_input_is_one_line_and_status_2(args, message, capsys):
    assert main(["gradcheck", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_installed_command_help_and_bad_input():
    done = subprocess.run([JAXBP, "gradcheck", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--sizes" in done.stdout and "angel" in done.stdout
    bad = subprocess.run([JAXBP, "gradcheck", "--activation", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("jaxbp: error: unknown activation 'nope'")
    assert "Traceback" not in bad.stderr and bad.stdout == ""
