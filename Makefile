# The README's two commands: `make run` (main job) and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: run test install install-dev bench speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"

# Main job: check the corpus, train, evaluate and package every default config, then package the
# best of them (the top row of `claims compare`) as models/default.
run: install
	$(BIN)/claims validate
	$(BIN)/claims train configs/*.yaml
	$(BIN)/claims package best --name default

test: install-dev
	$(BIN)/python -m pytest

# Results table: runs every default config (full protocol, default store) and rewrites bench/RESULTS.md.
bench: install
	$(BIN)/python bench/quality.py

# Prediction speed of the packages in models/ (after `make run`); adds a section to bench/RESULTS.md.
speed: install
	$(BIN)/python bench/predict_speed.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts mlruns .cache
