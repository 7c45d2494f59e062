#!/usr/bin/env bash
# Regression gate for any CI: replay a stored journal against the release
# under test and against the current release, interleaved A, B, A, and fail
# (exit 1) when any endpoint got slower or its errors rose.
#
# Usage: examples/regression-gate.sh JOURNAL_DIR BASE_URL CANDIDATE_URL [OUT_DIR]
set -euo pipefail
journal=${1:?journal directory}
base=${2:?URL of the current release}
candidate=${3:?URL of the release under test}
out=${4:-tapedeck-out}
mkdir -p "$out"

replay() { # label url
    tapedeck replay "$journal" --target "$2" --multiply 10 --speed 10 --run-time 60s \
        --label "$1" --report "$out/$1.json" --csv "$out/$1" --no-fail
}

replay base-1 "$base"
replay candidate "$candidate"
replay base-2 "$base"

# The A-vs-A control first: if the current release differs from itself the
# machine is too noisy for the verdict below to mean much.
tapedeck analyze compare --base "$out/base-1.json" --candidate "$out/base-2.json" --no-fail
tapedeck analyze compare --base "$out/base-1.json" "$out/base-2.json" \
    --candidate "$out/candidate.json" --format html -o "$out/compare.html" --no-fail
tapedeck analyze compare --base "$out/base-1.json" "$out/base-2.json" \
    --candidate "$out/candidate.json" --format md -o "$out/compare.md" --no-fail
# The gate: exit 1 on a regression.
tapedeck analyze compare --base "$out/base-1.json" "$out/base-2.json" \
    --candidate "$out/candidate.json"
