"""CPU time by process session from Linux's /proc: what a server costs per request.

bench/run.py uses it to count a server's processes apart from PostgreSQL's and the machine's;
it lives here so that its test needs nothing from bench/.
"""

import os


def cpu_seconds(session: int) -> dict:
    """CPU seconds used so far by the processes of `session` (a server), by PostgreSQL's and,
    as busy time, by the whole machine; empty without Linux's /proc."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return {}
    used = {"server": 0, "postgres": 0, "machine": sum(ticks) - ticks[3] - ticks[4]}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        time_used = int(fields[11]) + int(fields[12])  # user and system
        if int(fields[3]) == session:
            used["server"] += time_used
        elif name.startswith("postgres"):
            used["postgres"] += time_used
    tick = os.sysconf("SC_CLK_TCK")
    return {key: value / tick for key, value in used.items()}
