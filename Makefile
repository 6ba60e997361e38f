# Two commands do all the set-up on a fresh machine (README):
#   make book   executes every chapter (PROFILE=quick by default) and builds the HTML book
#   make test   runs the whole test suite (unit, notebooks, book, grader, lint)
# Both create .venv and install the project into it first.

PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
BUILD   ?= _build

.PHONY: install execute book test lint format release clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./package -e ".[dev]"
	touch $@

execute: install  ## run every chapter with papermill under PROFILE
	$(BIN)/python -m cnn_book.execute --profile $(PROFILE) --build-dir $(BUILD)

book: execute  ## the main job: executed notebooks -> HTML in $(BUILD)/html
	$(BIN)/python -m cnn_book.build --build-dir $(BUILD)

test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format package cnn_book grader tests

release: install  ## regenerate assignments/ from solutions/ (grader release)
	$(BIN)/grader release

clean:
	rm -rf $(BUILD)
