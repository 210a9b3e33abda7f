# The two entry points a user needs: `make up` and `make test`. Everything else is their plumbing.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV   := .venv
# `make up PORT=4100 HOST=0.0.0.0`: where the gateway listens (clawpen up --port/--host). Only the
# command line counts: PORT and HOST in the environment often mean something else (zsh sets HOST).
ifneq ($(origin PORT),command line)
PORT := 3000
endif
ifneq ($(origin HOST),command line)
HOST := 127.0.0.1
endif
PY     := $(VENV)/bin/python
CLAWPEN := $(VENV)/bin/clawpen

.PHONY: up test deps docker image lint bench clean

# pip's own progress (one line per package) instead of -q: a first install takes about a minute.
$(VENV)/.deps: pyproject.toml
	@echo "==> creating $(VENV) and installing Python dependencies (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off --upgrade pip | { grep -v '^Requirement already' || true; }
	$(PY) -m pip install --progress-bar off -e '.[test]' | { grep -E '^(Collecting|Installing|Successfully)' || true; }
	touch $@

deps: $(VENV)/.deps

docker:
	@echo "==> checking the Docker engine"
	@bash deploy/host/ensure-docker.sh

image: deps docker
	@echo "==> agent image (built once, then reused while its inputs do not change)"
	@$(CLAWPEN) image build

up: image
	@echo "==> clawpen up on $(HOST):$(PORT) (Ctrl-C stops the controller; agents keep running: clawpen down)"
	$(CLAWPEN) up --host $(HOST) --port $(PORT)

test: image
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check controller api agent tests bench
	$(VENV)/bin/mypy controller api agent

bench: image
	$(PY) bench/converge.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
