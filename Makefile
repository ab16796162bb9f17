# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests use: the real Fashion-MNIST, the browser of the MLflow UI test, and PostgreSQL for
# the team server's tests (pg_ctlcluster comes with the server, not with the client packages).
TEST_PACKAGES := dataset-fashion-mnist:/usr/share/datasets/fashion-mnist chromium:/usr/bin/chromium \
    postgresql:/usr/bin/pg_ctlcluster

.PHONY: demo test lint test-packages bench clean

# uv (from PyPI, into the venv) installs what pip would, the same versions, in half a minute rather than a minute
# and a half: it downloads in parallel (34 s against 89 s here for '.[test]', both without a cache). Like pip it
# compiles the bytecode upfront: where PYTHONDONTWRITEBYTECODE is set nothing would later, and every process
# would compile what it imports (importing a sweep's modules took 9 s instead of 3.5). pip is the fallback.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
	    && $(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test]'; } \
	    || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The main job: prove BP1–BP4 on a real batch, then the quickstart sweep (digits, 24 configs) into
# ./mlflow.db; `$(BIN)/jaxbp ui` then shows it in the MLflow UI.
demo: $(STAMP)
	$(BIN)/jaxbp gradcheck --dataset digits
	$(BIN)/jaxbp sweep experiments/quickstart.toml

# The suite runs every test; a test whose Debian package is missing (and could not be installed here) is
# skipped with the package named, and under CI=true fails instead.
test: $(STAMP) test-packages lint
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check jaxbp tests benchmarks

# Installs the missing test packages where that is possible without a password (root, or sudo -n).
test-packages:
	@missing=""; for entry in $(TEST_PACKAGES); do [ -e "$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else \
	    echo "make test: missing Debian packages:$$missing (not root, no passwordless sudo): their tests are skipped"; exit 0; fi; \
	echo "make test: installing Debian packages:$$missing"; \
	{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; } \
	    || echo "make test: could not install$$missing: their tests are skipped"

bench: $(STAMP)
	$(BIN)/python benchmarks/grad_speed.py
	$(BIN)/python benchmarks/epoch_speed.py
	$(BIN)/python benchmarks/sweep_speed.py
	$(BIN)/python benchmarks/step_floor.py
	$(BIN)/python benchmarks/start_speed.py

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info .jaxbp
