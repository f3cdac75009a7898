# Atelier: `make run` starts the demo on SQLite, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint migrate clean bench interop

setup: $(STAMP)
	@DEBUG=1 $(PY) manage.py collectstatic --noinput -v0

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	DEBUG=1 SECURE_SSL_REDIRECT=0 $(PY) manage.py migrate --noinput
	DEBUG=1 SECURE_SSL_REDIRECT=0 $(PY) manage.py seed_demo
	DEBUG=1 SECURE_SSL_REDIRECT=0 $(PY) manage.py runserver 127.0.0.1:8000

test: setup interop
	$(PY) -m pytest $(PYTEST_ARGS)

# The MCP reference server the interop test runs (tests/interop/package.json pins it), from
# npm into the git-ignored tests/interop/node_modules. Without npm the test skips and says so;
# .ci/run installs it and fails if it cannot.
INTEROP_STAMP := tests/interop/node_modules/.package-lock.json
interop: $(INTEROP_STAMP)

$(INTEROP_STAMP): tests/interop/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the MCP interop test will be skipped"; fi

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
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts tests/interop/node_modules
