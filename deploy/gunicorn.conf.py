"""gunicorn for Atelier: `gunicorn -c deploy/gunicorn.conf.py config.wsgi:application`.

Threaded workers (gthread): a request waiting on an MCP server holds one thread, not a whole
process, and MCP_MAX_CALLS_PER_PROCESS (below GUNICORN_THREADS) keeps threads free in every
worker for everything else, health checks included. Each value can be set in the environment.
"""

import os
import tempfile
from pathlib import Path

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

# Metrics cover every worker: each worker writes its counters to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds them all up (config/metrics.py). Set before any
# worker imports the app; unset, a fresh directory of this master's own is used.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="atelier-metrics-")


def on_starting(server):
    # Files left by an earlier run would add its counts to this one's.
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    # A dead worker's live gauges go; its counters stay, so totals never drop. (Imported here:
    # prometheus_client picks its storage when first imported, which must be after the above.)
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
