"""gunicorn for Atelier: `gunicorn -c deploy/gunicorn.conf.py config.wsgi:application`.

Threaded workers (gthread): a request waiting on an MCP server holds one thread, not a whole
process, and MCP_MAX_CALLS_PER_PROCESS (below GUNICORN_THREADS) keeps threads free in every
worker for everything else, health checks included. Each value can be set in the environment.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
# As many threads as the database pool has connections (8 per process), so a thread seldom
# waits for one; an MCP call gives its connection back while it waits on the server.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A gthread worker stays alive while its threads are busy; this only ends a hung process.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
