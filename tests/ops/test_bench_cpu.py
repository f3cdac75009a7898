"""The benchmark's CPU accounting: a server's processes are counted by their session."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.procstat import cpu_seconds

BURN = "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
# Burns 0.4 s of CPU when told to, says so, and stays alive until its input closes.
SERVER = (
    f"import sys, time\nsys.stdin.readline()\n{BURN}\nprint('done', flush=True)\nsys.stdin.read()"
)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc")
def test_cpu_of_a_session_counts_its_processes_and_not_others():
    server = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        before = cpu_seconds(server.pid)
        server.stdin.write("go\n")
        server.stdin.flush()
        assert server.stdout.readline() == "done\n"
        another = [sys.executable, "-c", f"import time\n{BURN}"]
        subprocess.run(another, check=True)  # noqa: S603 - this interpreter, our own code
        after = cpu_seconds(server.pid)
    finally:
        server.stdin.close()
        server.wait()

    used = {key: after[key] - before[key] for key in after}
    assert 0.35 <= used["server"] <= 0.6  # its own burn, not the other process's
    assert used["machine"] >= 0.75  # both burns
