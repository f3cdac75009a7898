"""Write a valid memstorage-v1 dump of about N rows, streaming, for timing the legacy import.

    .venv/bin/python bench/legacy_generate.py 1000000 /tmp/dump-1m.json [--gzip] [--seed 7]

The generator itself lives with the tests that use it too (tests/legacy/generate.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.legacy.generate import main

if __name__ == "__main__":
    main()
