#!/usr/bin/env bash
# The test suite on KERAS_BACKEND=jax and KERAS_BACKEND=tensorflow: what `make test` runs.
#
#   JOBS=2 (the default on a machine with two or more cores): the two backends side by side. Much of
#          a test run is one core's work (compiling and tracing steps, Python), so two runs share two
#          cores well. The JAX run prints as it goes; the TensorFlow run's output follows it.
#   JOBS=1: one backend after the other, each printing as it goes.
#   PYTEST_ARGS: more pytest arguments for both runs, e.g. PYTEST_ARGS="-x tests/tabular".
#
# Each run ends with its 15 slowest tests (pytest --durations), so a CI log says where the minutes went.
#
# Each backend gets a temporary folder and a kmodels cache of its own (TMPDIR, KMODELS_CACHE_DIR), so the
# two runs share no files; both are removed at the end. Exit status: 0 when both runs pass, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
jobs=${JOBS:-$((cores >= 2 ? 2 : 1))}
case $jobs in 1 | 2) ;; *) echo "run_backends.sh: JOBS must be 1 or 2, not '$jobs'" >&2; exit 2 ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/kmodels-tests-XXXXXX") || exit 2
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

suite() {  # suite BACKEND &: the whole test suite on one backend, in its own folders; the background
  # subshell becomes pytest (exec), so the PID that $! names is the one the cleanup stops
  mkdir -p "$work/$1/tmp" "$work/$1/cache"
  # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
  TMPDIR="$work/$1/tmp" KMODELS_CACHE_DIR="$work/$1/cache" KERAS_BACKEND=$1 \
    exec "$PY" -m pytest -q -p no:cacheprovider --durations=15 ${PYTEST_ARGS:-tests}
}

status=0
# Every suite runs in the background and the script waits for it: bash runs a trap only between commands,
# so a foreground pytest would keep Ctrl-C or a CI timeout's SIGTERM from reaching the cleanup above.
if [ "$jobs" = 1 ]; then
  for backend in jax tensorflow; do
    echo "=== pytest on KERAS_BACKEND=$backend"
    suite "$backend" &
    pids=($!)
    wait "${pids[0]}" || status=1
    pids=()
  done
else
  echo "=== pytest on KERAS_BACKEND=jax and KERAS_BACKEND=tensorflow side by side (JOBS=1: one after the other)"
  suite tensorflow > "$work/tensorflow.log" 2>&1 &
  pids+=($!)
  echo "=== pytest on KERAS_BACKEND=jax"
  suite jax &
  pids+=($!)
  wait "${pids[1]}" || status=1
  wait "${pids[0]}" || status=1
  pids=()
  echo "=== pytest on KERAS_BACKEND=tensorflow (run beside the JAX one)"
  cat "$work/tensorflow.log"
fi
exit $status
