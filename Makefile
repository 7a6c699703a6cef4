# The README's two commands: `make run` (main job) and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: run test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"

# Main job: check the corpus, train and evaluate every default config, package the best one.
run: install
	$(BIN)/claims validate
	$(BIN)/claims train configs/*.yaml

test: install-dev
	$(BIN)/python -m pytest

# Results table: runs the default configs into a fresh store and rewrites bench/RESULTS.md.
bench: install
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts mlruns .cache
