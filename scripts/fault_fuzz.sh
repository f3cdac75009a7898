#!/usr/bin/env bash
# The long schemathesis run, by hand: the same test as CI with more examples per operation.
#
#   scripts/fault_fuzz.sh                        # 100 examples per operation, PostgreSQL
#   FUZZ_LONG_EXAMPLES=300 scripts/fault_fuzz.sh
#
# Uses DATABASE_URL (default: the local PostgreSQL, database atelier_fuzz; pytest-django creates
# and drops test_atelier_fuzz). Bounded by the example count; prints the number of cases run.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/atelier_fuzz}"
exec timeout 3600 .venv/bin/python -m pytest tests/faults/test_fuzz.py -m long -q -p no:cacheprovider \
  -W ignore "$@"
