# Pipworks developer entry points. Every target bootstraps what it needs:
# a pinned uv in .tools/, the locked environment in .venv/, generated protos.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON    ?= python3
UV_VERSION := 0.13.9
TOOLS     := .tools
UV        := $(TOOLS)/bin/uv
VENV      := .venv
PY        := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

PROTO_DIR   := proto
PROTO_OUT   := libs/protos
PROTO_FILES := $(shell find $(PROTO_DIR) -name '*.proto' | sort)
PROTO_STAMP := $(PROTO_OUT)/pipworks/.generated
PYPROJECTS  := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

# pytest workers for `make test`; CI machines have two cores.
TEST_WORKERS ?= 2
PYTEST_ARGS  ?=

.PHONY: help run demo test test-fast lint fmt proto bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(PYPROJECTS) | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

$(PROTO_STAMP): $(PROTO_FILES) $(VENV)/.synced
	@rm -rf $(PROTO_OUT)/pipworks/*/
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m grpc_tools.protoc -I $(PROTO_DIR) \
		--python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
		--mypy_out=quiet:$(PROTO_OUT) --mypy_grpc_out=quiet:$(PROTO_OUT) $(PROTO_FILES)
	@find $(PROTO_OUT)/pipworks -mindepth 1 -type d -exec touch {}/__init__.py \;
	@touch $@

proto: $(PROTO_STAMP) ## generate Python code from proto/ into libs/protos

run: $(PROTO_STAMP) ## start PostgreSQL, NATS and every service; Ctrl-C stops them
	$(PY) -m pipworks_devstack run

demo: $(PROTO_STAMP) ## walk the golden path through the running suite (starts one if none)
	$(PY) -m pipworks_devstack.demo $(DEMO_ARGS)

test: $(PROTO_STAMP) ## run the whole test suite against real PostgreSQL and NATS
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: $(PROTO_STAMP) ## run the tests not marked slow
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" $(PYTEST_ARGS)

# package.json pins buf exactly; buf's platform binaries are optional dependencies that
# a lock file written on one OS cannot list for the others, so none is kept.
node_modules/.bin/buf: package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $@

lint: $(PROTO_STAMP) node_modules/.bin/buf ## ruff + buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd $(PROTO_DIR) && ../node_modules/.bin/buf lint

fmt: $(VENV)/.synced ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(PROTO_STAMP) ## throughput figures, each beside a same-run baseline
	$(PY) -m bench

clean: ## remove environments, generated code and local data
	rm -rf $(TOOLS) $(VENV) node_modules .data .pytest_cache .ruff_cache
	find $(PROTO_OUT)/pipworks -mindepth 1 -not -name __init__.py -delete 2>/dev/null || true
	rm -f $(PROTO_STAMP)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
