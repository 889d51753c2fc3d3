# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
# Installed first, on its own, so no later requirement pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install install-dev demo test lint bench clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp records the spec, so a different TORCH_SPEC reinstalls torch in the same venv.
$(VENV)/.torch: $(BIN)/python FORCE
	@if [ "$$(cat $@ 2>/dev/null)" != '$(TORCH_SPEC)' ]; then \
		echo "$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)'"; \
		$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)' && echo '$(TORCH_SPEC)' > $@; \
	fi

install: $(VENV)/.torch
	$(BIN)/python -m pip install --quiet -e .

install-dev: $(VENV)/.torch
	$(BIN)/python -m pip install --quiet -e ".[dev]"

demo: install
	$(BIN)/torchlinreg demo

test: install-dev
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: install-dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
