"""A throwaway PostgreSQL cluster: its own data directory in a temporary folder, a free port,
trust authentication, TCP on loopback only; stopped and removed on exit.

Tests that stop or restart PostgreSQL use one of these, never a server they did not start.
It runs the installed server's own `initdb` and `pg_ctl`; as root (initdb refuses to run as
root) they run as the `postgres` OS user.

    with ThrowawayCluster() as cluster:
        cluster.create_database("app")
        url = cluster.url("app")
        cluster.stop(); cluster.start()
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayCluster:
    def __init__(self) -> None:
        self.bin = server_bin_dir()
        self.run_as: list[str] = []
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable("running as root and no postgres user") from None
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.root: Path | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "ThrowawayCluster":
        self.root = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
        try:
            if self.owner:
                os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
            self._run(
                "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
            with open(Path(self.data) / "postgresql.conf", "a") as conf:
                # Loopback TCP only (no socket in a shared directory), and no fsync: the data
                # is thrown away, and a restart must be quick.
                conf.write(
                    f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = ''\nfsync = off\nfull_page_writes = off\n"
                )
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
        self._pg_ctl("start", "-l", str(Path(self.root) / "server.log"))
        self.wait(up=True)

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")
        self.wait(up=False)

    # ------------------------------------------------------------ use

    @property
    def data(self) -> str:
        return str(Path(self.root) / "data")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

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
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    # ------------------------------------------------------------ plumbing

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
