# Atelier: `make run` starts the demo on SQLite, `make test` runs every test.
# The interpreter for the virtualenv: python3.11, else python3 if it is 3.11 or later
# (`make PYTHON=/path/to/python3.12 setup` to choose another).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: setup run test lint migrate clean bench lock interop

setup: $(STAMP)
	@DEBUG=1 $(PY) manage.py collectstatic --noinput -v0

# Installs exactly the versions and hashes of requirements.lock (the dependencies and the dev
# extra of pyproject.toml); `make lock` regenerates it.
$(STAMP): $(LOCK)
	@test -x $(PY) || test -n "$(PYTHON)" || \
		{ echo "make: Python 3.11 or later is needed: neither python3.11 nor python3 is on the PATH (or set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); 3.11 or later is needed (install python3.11, or set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	touch $(STAMP)

# After changing the dependencies in pyproject.toml: pins every package (for Python 3.11 and
# later, on every platform) with its hashes. Commit the result with the pyproject.toml change.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --generate-hashes \
		--python-version 3.11 --quiet -o $(LOCK)

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
