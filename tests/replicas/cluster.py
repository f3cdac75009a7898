"""A throwaway PostgreSQL primary and a hot standby of it, for the replica tests.

Both run from the machine's PostgreSQL binaries in a temporary directory on free ports, with
trust authentication on 127.0.0.1 only, as the `postgres` OS user when we are root (initdb
refuses root). They never touch another cluster, and are stopped and removed afterwards.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.pg_cluster import free_port


def postgres_bin_dir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def why_not_runnable() -> str | None:
    """None when these tests can run here, else the reason to skip them."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        return "needs PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a postgres OS user to own the clusters"
    return None


class Cluster:
    def __init__(self, bin_dir: Path, data_dir: Path, port: int, log: Path):
        self.bin_dir, self.data_dir, self.port, self.log = bin_dir, data_dir, port, log

    def url(self, database: str = "atelier") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "atelier") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def start(self) -> None:
        run_as_postgres(
            [self.bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log, "-w", "start"]
        )

    def stop(self) -> None:
        run_as_postgres(
            [self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w", "stop"],
            check=False,
        )


def run_as_postgres(command, *, check: bool = True) -> None:
    command = [str(part) for part in command]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=check, capture_output=True, timeout=120)  # noqa: S603


class PrimaryAndStandby:
    """`start()` gives a primary with an empty database `atelier`; `add_standby()` then clones
    it with pg_basebackup -R and starts the standby streaming from it."""

    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="atelier-replicas-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        self.primary = Cluster(
            self.bin_dir, self.root / "primary", free_port(), self.root / "primary.log"
        )
        self.standby = Cluster(
            self.bin_dir, self.root / "standby", free_port(), self.root / "standby.log"
        )

    def start(self) -> None:
        run_as_postgres(
            [
                self.bin_dir / "initdb",
                "-D",
                self.primary.data_dir,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        with (self.primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.primary.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "hot_standby = on\n"
                "fsync = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 32MB\n"
                "max_connections = 60\n"
            )
        self.primary.start()
        with self.primary.connect("postgres") as conn:
            conn.execute("CREATE DATABASE atelier")

    def add_standby(self) -> None:
        run_as_postgres(
            [
                self.bin_dir / "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                self.primary.port,
                "-U",
                "postgres",
                "-D",
                self.standby.data_dir,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )
        with (self.standby.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.standby.port}\n")
        self.standby.start()
        self.wait_for_replay()

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        with self.primary.connect() as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        self._wait_standby("SELECT pg_last_wal_replay_lsn() >= %s", target, timeout)

    def wait_for_receipt(self, timeout: float = 30) -> None:
        """Until the standby has received (not necessarily replayed) all the primary wrote."""
        with self.primary.connect() as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        self._wait_standby("SELECT pg_last_wal_receive_lsn() >= %s", target, timeout)

    def _wait_standby(self, sql: str, target, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.standby.connect() as conn:
                    if conn.execute(sql, (target,)).fetchone()[0]:
                        return
            except psycopg.OperationalError:
                pass  # still starting
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not catch up; see {self.standby.log}")
            time.sleep(0.05)

    def remove(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)
