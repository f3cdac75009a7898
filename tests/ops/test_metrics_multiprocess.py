"""Under gunicorn with two workers, /metrics counts the requests every worker served."""

import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.faults.db_fault import server_env
from tests.pg_cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback
        return response.read().decode()


def healthz_count(body: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "atelier_requests"
        for sample in family.samples
        if sample.name == "atelier_requests_total" and sample.labels.get("view") == "healthz"
    )


def test_metrics_add_up_every_workers_requests(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = tmp_path / "access.log"
    env = server_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")  # /healthz and /metrics need no rows
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    (tmp_path / "metrics").mkdir()
    server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "deploy/gunicorn.conf.py",
            "config.wsgi:application",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(p)s %(U)s",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/healthz")
                break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

        # Concurrent requests on fresh connections until both workers have served some.
        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):
                list(pool.map(lambda _: get(f"{base}/healthz"), range(40)))
                time.sleep(0.2)  # the access log is written after the response
                lines = [line.split() for line in access_log.read_text().splitlines()]
                served_by = {pid for pid, path in lines if path == "/healthz"}
                if len(served_by) >= 2:
                    break
        served = sum(1 for _, path in lines if path == "/healthz")
        assert len(served_by) == 2, "both workers should have answered /healthz"

        # Each scrape, whichever worker answers it, reports every worker's requests.
        counts = {healthz_count(get(f"{base}/metrics")) for _ in range(6)}
        assert counts == {served}
    finally:
        server.terminate()
        server.wait(timeout=30)
