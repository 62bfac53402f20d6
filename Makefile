# Two commands for a new user: `make demo` and `make test`. Both set up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crossdeploy demo

# The layer contract (pyproject.toml, [tool.importlinter]) runs with the linters.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Most tests wait on change orders rather than compute, so more workers than cores pay off; a
# module's tests stay on one worker (--dist loadfile) so module fixtures start once, and the
# longest modules start first (tests/support/schedule.py; --no-loadscope-reorder keeps that order).
TEST_WORKERS ?= 4

# Debian's Chromium for the browser test, installed when missing (scripts/ensure-chromium).
browser:
	bash scripts/ensure-chromium

unit: $(STAMP) browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The browser check runs first, so a machine that cannot install it stops before anything runs.
test: browser lint typecheck unit

# Benchmarks against a naive baseline (not part of `make test`; about 25 minutes, BENCH_QUICK=1
# for about 4); prints the table and writes docs/BENCHMARKS.md.
bench: $(STAMP)
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
