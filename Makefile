# Entry points: `make demo` (the default audit), `make test` (the whole suite), `make test-fast` (the suite
# without subprocess, Ray, browser, loopback and slow tests), `make lint` (ruff, ruff format, mypy).
# All create .venv on first use and install everything into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

# torch==2.13.0 first: on this machine it is a local CPU wheel; any other spec may pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -e ".[dev,flower]"
	touch $@

demo: install
	$(BIN)/mganai run --overwrite --out $(OUT)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not (slow or subprocess or ray or browser or loopback)"

lint: install
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/mypy src/mganai

bench: install
	$(BIN)/python bench/default_run.py

clean:
	rm -rf $(VENV) runs
