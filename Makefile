# Entry points: `make demo` (the default audit), `make test` (the whole suite), `make test-fast` (the suite
# without subprocess, Ray, browser, loopback and slow tests), `make lint` (ruff, ruff format, mypy).
# All create .venv on first use and install everything into it. Python 3.11, 3.12 or 3.13 (pyproject.toml:
# requires-python >=3.11,<3.14); PYTHON=python3.12 picks another interpreter. Skipped tests print why (-rs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

# torch first, pinned (torch==2.13.0), and only when the venv has none. Which wheel pip takes depends on the
# machine: on Linux x86-64, PyPI's default torch is the CUDA build (several GB of CUDA libraries); for the
# CPU-only build pass TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu". Where pip is pointed
# at a local wheel directory (PIP_FIND_LINKS, as on the project's CI machines) that wheel is used.
TORCH_PIP_ARGS ?=
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --disable-pip-version-check $(TORCH_PIP_ARGS) torch==2.13.0
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
