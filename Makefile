# The two commands a newcomer types: `make run` and `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# honcho gives the Procfile's `ws` line (Daphne) PORT+100; pages and /api/v1/realtime point clients there.
WS_PORT := $(shell expr $(PORT) + 100)
export DJANGO_SETTINGS_MODULE ?= coliseum.settings.local
STAMP := $(VENV)/.installed

.PHONY: run test setup-system lint typecheck pytest pytest-clock install migrate seed bench clean-venv _run _migrate

# COLISEUM_SERVICES=auto|external|embedded (default auto): `bin/services exec` starts our own PostgreSQL
# and Redis under .data/ when the machine has none, runs the command, and stops them when it ends (Ctrl-C
# too). Nested uses (run -> seed -> migrate) share the servers the outer one started. See README, "Runs wherever Python runs".
SERVICES = $(PY) bin/services exec --

# (Re)install when pyproject.toml changes. Playwright drives Debian's chromium: no browser download.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	@$(SERVICES) $(MAKE) --no-print-directory _migrate

_migrate:
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: install
	@$(SERVICES) $(MAKE) --no-print-directory _run

# collectstatic compresses every file (gzip and brotli) on each run, 45-90 s on two cores: only when a
# static file or the installed packages changed since the last collection.
STATIC_ROOT ?= .data/staticfiles
STATIC_STAMP := $(STATIC_ROOT)/.collected
$(STATIC_STAMP): $(STAMP) $(shell find static -type f 2>/dev/null)
	$(PY) manage.py collectstatic --noinput -v 0
	@touch $@

_run: seed $(STATIC_STAMP)
	$(PY) manage.py demo_banner --port $(PORT)
	WEBSOCKET_BASE_URL=$${WEBSOCKET_BASE_URL:-ws://localhost:$(WS_PORT)} PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://localhost:$(PORT)} \
	  PYTHONUNBUFFERED=1 $(VENV)/bin/honcho start -f Procfile -p $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

# What the tests need of the machine: Debian packages (installed when root, else the apt-get command is
# named), the Node test clients, PostgreSQL and Redis started when installed and not answering. Also CI's.
setup-system:
	@bin/setup-system

pytest: install setup-system
	@DJANGO_SETTINGS_MODULE=coliseum.settings.test $(SERVICES) $(VENV)/bin/pytest

# The tests marked `clock` once more with this process's clock a year ahead: none may depend on today's date.
pytest-clock: install setup-system
	@COLISEUM_TEST_CLOCK_SHIFT_DAYS=365 DJANGO_SETTINGS_MODULE=coliseum.settings.test $(SERVICES) \
	  $(VENV)/bin/pytest -m clock

# setup-system first: on a fresh machine it installs python3-venv, which `install` needs.
test: setup-system lint typecheck pytest pytest-clock

bench: migrate
	$(PY) -m benchmarks.run

clean-venv:
	rm -rf $(VENV)
