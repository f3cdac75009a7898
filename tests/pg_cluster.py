"""Throwaway PostgreSQL clusters: each its own data directory in a temporary folder, a free
port, trust authentication, TCP on loopback only; stopped and removed on exit.

Tests that stop or restart PostgreSQL, or need a primary and a streaming standby, use these,
never a server they did not start (the machine's own cluster on 5432 is never touched). They
run the installed server's own `initdb`, `pg_ctl` and `pg_basebackup`; as root (initdb refuses
to run as root) they run as the `postgres` OS user.

    with ThrowawayCluster() as cluster:
        cluster.create_database("app")
        url = cluster.url("app")
        cluster.stop(); cluster.start()

    pair = PrimaryAndStandby()      # the replica tests: a primary, then a hot standby of it
    pair.start(); pair.add_standby(); ...; pair.remove()
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    """The PostgreSQL server programs (or a user to run them as) are not installed."""


def server_bin_dir() -> Path:
    """The newest installed server's bin directory (Debian's layout, else the PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ClusterUnavailable("no PostgreSQL server programs (initdb, pg_ctl) installed")


def unavailable_reason(*programs: str) -> str | None:
    """None when throwaway clusters can run here (with these extra server programs, such as
    pg_basebackup), else why not: the reason to skip a test that needs one."""
    try:
        bin_dir = server_bin_dir()
    except ClusterUnavailable as exc:
        return str(exc)
    missing = [program for program in programs if not (bin_dir / program).exists()]
    if missing:
        return f"no PostgreSQL {', '.join(missing)} installed beside initdb"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no postgres user to own the clusters"
        if shutil.which("runuser") is None:
            return "running as root needs runuser to start PostgreSQL as the postgres user"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayCluster:
    """One cluster. `settings` are added to its postgresql.conf; with `standby_of`, it is made
    by pg_basebackup from that (running) cluster and streams from it as a hot standby.
    `database` is what url() and connect() name when not told."""

    def __init__(
        self,
        *,
        settings: dict[str, str] | None = None,
        standby_of: "ThrowawayCluster | None" = None,
        database: str = "postgres",
    ) -> None:
        reason = unavailable_reason(*(["pg_basebackup"] if standby_of else []))
        if reason:
            raise ClusterUnavailable(reason)
        self.bin = server_bin_dir()
        self.run_as: list[str] = []
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.owner = pwd.getpwnam("postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.settings = settings or {}
        self.standby_of = standby_of
        self.database = database
        self.port = free_port()
        self.root: Path | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "ThrowawayCluster":
        self.root = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
        try:
            if self.owner:
                os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
            if self.standby_of is None:
                self._init()
            else:
                self._clone(self.standby_of)
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.root is None:
            return
        if (Path(self.data) / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def start(self) -> None:
        self._pg_ctl("start", "-l", str(self.log))
        self.wait(up=True)

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")
        self.wait(up=False)

    # ------------------------------------------------------------ use

    @property
    def data(self) -> str:
        return str(Path(self.root) / "data")

    @property
    def log(self) -> Path:
        return Path(self.root) / "server.log"

    def url(self, database: str | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def connect(self, database: str | None = None):
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def ready(self) -> bool:
        result = subprocess.run(  # noqa: S603 - the installed server's client, fixed arguments
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def wait(self, *, up: bool, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.ready() != up:
            if time.monotonic() > deadline:
                state = "ready" if up else "unavailable"
                raise RuntimeError(f"the throwaway PostgreSQL did not become {state}")
            time.sleep(0.2)

    def create_database(self, name: str) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    # ------------------------------------------------------------ plumbing

    def _init(self) -> None:
        self._run(
            "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        # Loopback TCP only (no socket in a shared directory), and no fsync: the data is
        # thrown away, and a restart must be quick.
        self._configure(
            {
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": "''",
                "fsync": "off",
                "full_page_writes": "off",
                **self.settings,
            }
        )

    def _clone(self, primary: "ThrowawayCluster") -> None:
        # -R writes the standby's connection to the primary; the primary's settings come along.
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", self.data, "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self._configure(self.settings)

    def _configure(self, settings: dict[str, str]) -> None:
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with open(Path(self.data) / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\n{lines}")

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", self.data, "-w", "-t", "60", *args)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 - the installed server's programs, our arguments
            [*self.run_as, str(self.bin / program), *args],
            check=True,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )


class PrimaryAndStandby:
    """The replica tests' pair: `start()` gives a primary with an empty database `atelier`;
    `add_standby()` then clones it (pg_basebackup -R) and starts the standby streaming from
    it. `remove()` stops and removes both."""

    DATABASE = "atelier"

    def __init__(self) -> None:
        replication = {
            "wal_level": "replica",
            "max_wal_senders": "4",
            "hot_standby": "on",
            "shared_buffers": "32MB",
            "max_connections": "60",
        }
        self.primary = ThrowawayCluster(settings=replication, database=self.DATABASE)
        self.standby = ThrowawayCluster(standby_of=self.primary, database=self.DATABASE)

    def start(self) -> None:
        self.primary.__enter__()
        self.primary.create_database(self.DATABASE)

    def add_standby(self) -> None:
        self.standby.__enter__()
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
        import psycopg

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
        self.standby.__exit__(None, None, None)
        self.primary.__exit__(None, None, None)
