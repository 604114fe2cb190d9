# Two entry points: `make demo` (the default audit) and `make test` (the whole suite).
# Both create .venv on first use and install everything into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo

.PHONY: install demo test bench clean

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

bench: install
	$(BIN)/python bench/default_run.py

clean:
	rm -rf $(VENV) runs
