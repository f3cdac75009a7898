"""PostgreSQL goes away under load and comes back: nothing acknowledged is lost or doubled.

    .venv/bin/python bench/fault_db_restart.py                  # 90 s of load
    .venv/bin/python bench/fault_db_restart.py --seconds 300

The run, on a throwaway PostgreSQL cluster of its own, lives with its test
(tests/faults/db_fault.py, which `make test` runs for 20 s); see there for what it checks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.db_fault import main

if __name__ == "__main__":
    sys.exit(main())
