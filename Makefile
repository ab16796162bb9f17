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

# The main job: prove BP1–BP4 on a real batch, then the quickstart sweep (digits, 24 configs) into
# ./mlflow.db; `$(BIN)/jaxbp ui` then shows it in the MLflow UI.
demo: $(STAMP)
	$(BIN)/jaxbp gradcheck --sizes 64,30,10 --dataset digits
	$(BIN)/jaxbp sweep experiments/quickstart.toml

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/grad_speed.py
	$(BIN)/python benchmarks/epoch_speed.py
	$(BIN)/python benchmarks/sweep_speed.py

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info .jaxbp
