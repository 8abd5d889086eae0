# Two entry points for a fresh clone: `make demo` runs the main job, `make test` the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,load]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/d1sim demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check contracts simulator tests benchmarks
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .d1sim d1sim-report build dist
