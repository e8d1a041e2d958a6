#!/usr/bin/env bash
# Run the Kafka-dependent suites N times in a row against one local broker, optionally beside LOAD
# busy processes (a shared CI machine), and report how many runs passed. A chance failure is a
# defect: this is how it is found. Usage (from the repository root, after `make install`):
#
#   tests/repeat.sh [N] [LOAD] [pytest paths...]      # or: make test-repeat N=10 LOAD=2
#
# Each run's output goes to .local/repeat/run-K.log; failed runs are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
load=${2:-0}
shift $(($# > 2 ? 2 : $#))
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(tests/backends tests/scorer tests/faults)
logs=.local/repeat
mkdir -p "$logs"
kafka=deploy/kafka/local-kafka.sh
export KAFKA_PORT=auto KAFKA_LOCAL_DIR="$PWD/.local/repeat-kafka"

hogs=()
cleanup() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$kafka" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 "$load"); do
  (while :; do :; done) &
  hogs+=($!)
done

"$kafka" fetch >/dev/null
export $("$kafka" start | tail -n 1)
passed=0
failed=()
for k in $(seq 1 "$runs"); do
  started=$(date +%s)
  if .venv/bin/pytest -q "${suites[@]}" >"$logs/run-$k.log" 2>&1; then
    passed=$((passed + 1))
    verdict=passed
  else
    failed+=("$k")
    verdict="FAILED: $(grep -E '^(FAILED|ERROR) tests/' "$logs/run-$k.log" | head -3 | tr '\n' ' ')"
  fi
  echo "run $k/$runs ($(($(date +%s) - started)) s, load $load): $verdict"
done
echo "$passed of $runs runs passed${failed:+; failed runs: ${failed[*]} (logs in $logs/)}"
[ "$passed" -eq "$runs" ]
