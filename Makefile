# Two commands for a fresh machine: `make run` (the portal on SQLite with the demo IdP) and
# `make test` (the whole suite). Each creates .venv and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= localhost
PORT ?= 5000

.PHONY: run serve test test-postgres lint bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## run: the portal at http://localhost:5000 on SQLite, with the demo IdP (development settings)
run: $(VENV)/.runtime
	APP_ENV=development BASE_URL=http://localhost:$(PORT) $(FLASK) db upgrade
	APP_ENV=development BASE_URL=http://localhost:$(PORT) $(FLASK) demo setup
	APP_ENV=development BASE_URL=http://localhost:$(PORT) $(FLASK) run --host $(HOST) --port $(PORT)

## serve: production settings locally, gunicorn on PostgreSQL (DATABASE_URL, default the local
## database "test"); a throwaway SECRET_KEY and SP_KEY_ENCRYPTION_KEY unless set (set the latter to keep
## connections readable across runs); BASE_URL default http://localhost:8000 (ALLOW_INSECURE_BASE_URL=1)
## (override it, e.g. `make serve BASE_URL=https://sso.example.com` behind a TLS proxy)
SERVE_DATABASE_URL ?= $(or $(DATABASE_URL),postgresql://postgres@127.0.0.1:5432/test)
SERVE_BASE_URL ?= $(or $(BASE_URL),http://localhost:8000)
serve: $(VENV)/.runtime
	@export APP_ENV=production DATABASE_URL='$(SERVE_DATABASE_URL)' BASE_URL='$(SERVE_BASE_URL)' \
	  ALLOW_INSECURE_BASE_URL="$${ALLOW_INSECURE_BASE_URL:-1}" \
	  SECRET_KEY="$${SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(32))')}" \
	  SP_KEY_ENCRYPTION_KEY="$${SP_KEY_ENCRYPTION_KEY:-$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')}"; \
	$(FLASK) db upgrade && exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## browser: Debian's chromium for the browser tests (needs root and apt; skipped with a reason otherwise)
browser:
	@bash scripts/install-chromium.sh

## test: the whole suite (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)
test: $(VENV)/.dev browser
	$(BIN)/pytest

## test-postgres: the suite against the local PostgreSQL (127.0.0.1:5432, database test)
test-postgres: $(VENV)/.dev browser
	TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test $(BIN)/pytest

## lint: style, formatting, types (app/) and the import layers (pyproject.toml); CI runs it first
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app
	$(BIN)/lint-imports

## bench: every benchmark on SQLite (BENCH_DATABASE_URL=postgresql://... for a scratch PostgreSQL database)
bench: $(VENV)/.dev
	$(BIN)/python bench/acs.py
	$(BIN)/python bench/support_list.py
	$(BIN)/python bench/csv_import.py
	$(BIN)/python bench/revoke.py
	@if [ -n "$$BENCH_DATABASE_URL" ]; then $(BIN)/python bench/http_load.py; \
	else echo "bench/http_load.py skipped: it needs BENCH_DATABASE_URL=postgresql://... (gunicorn on PostgreSQL)"; fi
	$(BIN)/python bench/scim.py
	$(BIN)/python bench/password.py
	$(BIN)/python bench/session_check.py
	$(BIN)/python bench/native_token.py
	$(BIN)/python bench/slo.py

clean:
	rm -rf $(VENV) instance .pytest_cache
