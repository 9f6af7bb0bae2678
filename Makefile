# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
# PYTHON picks the interpreter for the venv (must be >= 3.11); VENV lets CI keep one venv per Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The modules setup.py compiles: editing one rebuilds, since a stale build refuses to import (abm/_native.py).
COMPILED_SRC := $(shell sed -n 's/^ *"\(abm\/[a-z_\/]*\.py\)",$$/\1/p' setup.py)

.PHONY: demo test validate bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(COMPILED_SRC)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/abm run whale_dump

# ruff and mypy first (seconds): a lint or type error fails the run before the suite starts. The suite runs on
# TEST_WORKERS processes (pytest-xdist), a file's tests on one worker so a module's shared runs are made once.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check abm tests bench docs
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# the long validation runs (pytest -m slow): published results and randomized drivers at full size
validate: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/lob_replay.py

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .hypothesis build
	find abm -name '*.so' -delete
