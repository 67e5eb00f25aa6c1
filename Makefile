# tcstation: `make demo` runs the main job, `make test` runs the test suite.
# Both bootstrap a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
BIN := $(VENV)/bin

.PHONY: demo test lint bench ioc clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tcstation needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing tcstation and its dependencies into $(VENV) (first run takes about a minute)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tcstation demo

# Two workers, one test file each at a time: most of a test's time is spent waiting on the
# simulated instruments, so two files overlap well even on a 2-core machine.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .

$(BENCH_STAMP): $(STAMP)
	@echo "Installing the bench extra (QCoDeS, for the peer comparison) into $(VENV)..."
	@$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

# Every benchmark and a timed demo (about 30 min); the table goes to docs/benchmarks.md.
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py --markdown docs/benchmarks.md

ioc: $(STAMP)
	$(BIN)/tcstation ioc

clean-venv:
	rm -rf $(VENV)
