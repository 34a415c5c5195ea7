# mailroom: `make run` and `make test` set everything up on a fresh clone.
#
# Both install the versions pinned in the lock files (requirements.lock: what
# mailroom runs on; requirements-dev.lock: that plus the test and lint tools),
# generated from pyproject.toml's lower bounds by `make lock`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.runtime-stamp
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# The suite runs on two workers (each gets its own PostgreSQL database and ports);
# PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
# The data directory of `make run`: var/ in the checkout (absolute, as mailroom requires).
export MAILROOM_HOME ?= $(CURDIR)/var
# A config/mailroom.toml in the checkout, when there is one.
ifneq ($(wildcard config/mailroom.toml),)
export MAILROOM_CONFIG ?= $(CURDIR)/config/mailroom.toml
endif

.PHONY: run test lint typecheck bench check-config lock clean

define check_python
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "mailroom needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
endef

# The runtime only: mailroom and its dependencies at the locked versions.
$(RUN_STAMP): pyproject.toml requirements.lock
	$(check_python)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(RUN_STAMP)

# The runtime and the development tools (tests, lint, types, lock).
$(STAMP): pyproject.toml requirements-dev.lock
	$(check_python)
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/mailroom db upgrade
	$(BIN)/mailroom run

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mailroom tests
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy mailroom

bench: $(STAMP)
	$(BIN)/python -m bench.run

check-config: $(RUN_STAMP)
	$(BIN)/mailroom check-config

# Regenerate the lock files from pyproject.toml (newest versions within its bounds).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --no-header --no-emit-index-url --no-emit-find-links --output-file requirements.lock \
		pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-header --no-emit-index-url --no-emit-find-links --extra dev \
		--output-file requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
