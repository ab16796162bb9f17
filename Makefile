# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxbp gradcheck --sizes 784,30,10 --activation sigmoid --cost quadratic
	$(BIN)/jaxbp gradcheck --sizes 784,100,10 --activation relu --output-activation softmax --cost log_likelihood --init he

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/grad_speed.py

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
