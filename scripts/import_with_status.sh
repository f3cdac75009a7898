#!/usr/bin/env bash
# Run the legacy import and record its outcome for Prometheus (node_exporter textfile collector).
#
#   scripts/import_with_status.sh /path/to/dump.json [more import_legacy_store options]
#
# Writes $IMPORT_STATUS_FILE (default test-artifacts/atelier_import.prom) atomically:
#   atelier_import_last_run_timestamp_seconds      when the last run ended
#   atelier_import_last_success_timestamp_seconds  when the last successful run ended (kept on failure)
#   atelier_import_last_exit_code                  0 when it succeeded
#   atelier_import_last_duration_seconds           how long the last run took
# and exits with the import's own exit code. deploy/alerts.yml alerts on a non-zero exit code.
# IMPORT_COMMAND names another management command to run and record instead.
set -uo pipefail
cd "$(dirname "$0")/.."
status_file="${IMPORT_STATUS_FILE:-test-artifacts/atelier_import.prom}"
mkdir -p "$(dirname "$status_file")"

started=$(date +%s)
.venv/bin/python manage.py "${IMPORT_COMMAND:-import_legacy_store}" "$@"
code=$?
ended=$(date +%s)

last_success=0
if [ -f "$status_file" ]; then
  last_success=$(awk '/^atelier_import_last_success_timestamp_seconds /{print $2}' "$status_file")
  last_success=${last_success:-0}
fi
[ "$code" -eq 0 ] && last_success=$ended

tmp="$status_file.$$"
cat >"$tmp" <<PROM
# HELP atelier_import_last_run_timestamp_seconds When the last import run ended.
# TYPE atelier_import_last_run_timestamp_seconds gauge
atelier_import_last_run_timestamp_seconds $ended
# HELP atelier_import_last_success_timestamp_seconds When the last successful import ended.
# TYPE atelier_import_last_success_timestamp_seconds gauge
atelier_import_last_success_timestamp_seconds $last_success
# HELP atelier_import_last_exit_code Exit code of the last import run (0 = success).
# TYPE atelier_import_last_exit_code gauge
atelier_import_last_exit_code $code
# HELP atelier_import_last_duration_seconds How long the last import run took.
# TYPE atelier_import_last_duration_seconds gauge
atelier_import_last_duration_seconds $((ended - started))
PROM
mv "$tmp" "$status_file"
exit "$code"
