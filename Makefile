# The two entry points a user needs: `make up` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLAWPEN := $(VENV)/bin/clawpen

.PHONY: up test deps docker image lint bench clean

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

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

lint: deps
	$(VENV)/bin/ruff check controller api agent tests bench
	$(VENV)/bin/mypy controller api agent

bench: image
	$(PY) bench/converge.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
