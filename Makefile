# Atelier: `make run` starts the demo on SQLite, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint migrate clean bench

setup: $(STAMP)
	@DEBUG=1 $(PY) manage.py collectstatic --noinput -v0

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo's MCP server runs on loopback beside the site (MCP_ALLOWED_HOSTS lets the app reach
# it) and stops with it: the trap ends it when runserver ends, and it ends itself if this shell
# is gone.
RUN_ADDRESS ?= 127.0.0.1:8000
DEMO_ENV := DEBUG=1 SECURE_SSL_REDIRECT=0 MCP_ALLOWED_HOSTS=127.0.0.1

run: setup
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	@$(DEMO_ENV) $(PY) manage.py demo_mcp_server & mcp=$$!; \
	trap 'kill $$mcp 2>/dev/null' EXIT INT TERM; \
	$(DEMO_ENV) $(PY) manage.py seed_demo --wait-for-tools 15 && \
	$(DEMO_ENV) $(PY) manage.py runserver $(RUN_ADDRESS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The benchmark (never part of `make test`): seeds BENCH_DATABASE_URL once per scale, then
# loads the app and the raw-psycopg baseline with wrk (installed from Debian's packages when
# missing). Needs PostgreSQL and Redis.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/atelier_bench
BENCH_SCALE ?= 1

bench: setup
	@command -v wrk >/dev/null || { echo "bench: installing Debian's wrk"; \
		apt-get install -y -qq wrk >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq wrk; }; }
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/seed.py --if-needed --scale $(BENCH_SCALE)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/run.py $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts
