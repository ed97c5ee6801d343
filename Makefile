# Two targets do everything: `make run` (set up, build, train, serve) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := models training serving dualscreen tests bench

.PHONY: run test lint setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so that nothing below pulls a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/dualscreen up

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/pytest

clean:
	rm -rf $(VENV) data/corpus mlflow.db mlruns var
