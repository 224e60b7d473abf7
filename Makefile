# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv lint bench clean components

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "make: $(PYTHON) -m venv failed; installing Debian's python3-venv (needs root)"; rm -rf $(VENV); \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh examples/repo-layout

# the real components the tests use (Docker, registry, base image, Prometheus, Chromium), when root on Debian
components:
	bash scripts/components.sh

test: $(STAMP) components
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gitops_ml tests benchmarks
	$(BIN)/mypy gitops_ml
	$(BIN)/lint-imports
	$(BIN)/deptry gitops_ml

bench: $(STAMP)
	$(BIN)/python benchmarks/validate.py

clean:
	rm -rf $(VENV) dist build .pytest_cache
