#!/usr/bin/env bash
# Fuzzes tapedeck's parsers of untrusted input with cargo-fuzz (libFuzzer +
# AddressSanitizer), each target for a bounded time:
#   journal_reader     JournalReader on arbitrary bytes (seeded with journals)
#   har_import         HAR document -> exchanges (seeded with a HAR file)
#   threshold_parser   --threshold expressions
#   correlation_rules  --correlation rules files, applied to a small session
# Prints one line per target (runs, corpus size, crashes of this run) and
# exits 1 when a target crashed; crash inputs are left in
# fuzz/artifacts/TARGET/ (replay one with `cargo +nightly fuzz run TARGET
# FILE` in fuzz/), logs in fuzz/artifacts/TARGET.log.
#
# Usage: [FUZZ_SECONDS=60] bench/fuzz.sh [TARGET...]
# Needs: cargo with a nightly toolchain, or stable with RUSTC_BOOTSTRAP=1
# (set here when no nightly is installed); installs cargo-fuzz when missing;
# zstd for the journal seeds (skipped when missing).
set -euo pipefail

SECS="${FUZZ_SECONDS:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(journal_reader har_import threshold_parser correlation_rules)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# cargo-fuzz passes -Z flags to rustc: nightly, or stable told to allow them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  CARGO=(cargo +nightly)
else
  export RUSTC_BOOTSTRAP=1
  CARGO=(cargo)
fi

# Seed corpora: a few valid inputs, so mutation starts past the magic bytes.
seed() { mkdir -p "$FUZZ/corpus/$1"; printf '%s' "$3" > "$FUZZ/corpus/$1/$2"; }
HEADER='{"type":"header","format":"tapedeck-journal","version":1,"created":"2026-11-26T10:00:00Z","upstream":"https://api.corevia.app","tool":"tapedeck 0.1.0"}'
EXCHANGE='{"type":"exchange","id":1,"session":"client:1","conn":1,"started":"2026-11-26T10:00:00.000000000Z","client":"10.0.0.1:4000","request":{"method":"POST","uri":"/api/v1/auth/login","version":"HTTP/1.1","headers":[["content-type","application/json"]],"body":"{\"username\":\"ann\",\"password\":\"<redacted:ab12>\"}"},"response":{"status":200,"headers":[["content-type","application/json"]],"body":"{\"access_token\":\"tok\"}"},"error":null,"ttfb_us":900,"duration_us":1000}'
if command -v zstd >/dev/null; then
  mkdir -p "$FUZZ/corpus/journal_reader"
  { printf '%s\n' "$HEADER" | zstd -q -c; printf '%s\n' "$EXCHANGE" "$EXCHANGE" | zstd -q -c; } \
    > "$FUZZ/corpus/journal_reader/two-frames"
  printf '%s\n%s\n' "$HEADER" "$EXCHANGE" | zstd -q -c > "$FUZZ/corpus/journal_reader/one-frame"
fi
seed har_import entry '{"log":{"version":"1.2","entries":[{"startedDateTime":"2026-11-26T10:00:00Z","time":12,"request":{"method":"POST","url":"http://127.0.0.1:8000/api/v1/auth/login","headers":[{"name":"Content-Type","value":"application/json"}],"postData":{"mimeType":"application/json","text":"{\"username\":\"ann\"}"}},"response":{"status":200,"headers":[],"content":{"mimeType":"application/json","text":"eyJhIjoxfQ==","encoding":"base64"}},"timings":{"wait":10,"receive":2}}]}}'
seed threshold_parser named 'Social Feed:p95<200ms'
seed threshold_parser k6 'p(99.9)<1500'
seed threshold_parser rate 'error_rate<1%'
seed threshold_parser rps 'rps>100'
seed correlation_rules rules '{"add":[{"source_endpoint":"Login","source":"json $.user.username"}],"veto":[{"source":"json $.items[3].author_id","sink":"path segment 4"},{"sink_endpoint":"Log Food"}]}'

cd "$FUZZ"
echo "building fuzz targets..." >&2
"${CARGO[@]}" fuzz build >&2
FAILED=0
printf '%-18s %8s %10s %8s %8s\n' target seconds runs corpus crashes
for t in "${TARGETS[@]}"; do
  LOG="$FUZZ/artifacts/$t.log"
  mkdir -p "$FUZZ/artifacts/$t"
  STAMP="$FUZZ/artifacts/.started-$t"
  touch "$STAMP"
  set +e
  "${CARGO[@]}" fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$LOG" 2>&1
  rc=$?
  set -e
  runs="$(grep -aEo 'Done [0-9]+ runs' "$LOG" | grep -Eo '[0-9]+' | tail -1 || true)"
  [ -n "$runs" ] || runs="$(grep -aEo '^stat::number_of_executed_units: *[0-9]+' "$LOG" | grep -Eo '[0-9]+$' | tail -1 || true)"
  corpus="$(find "corpus/$t" -type f | wc -l)"
  # Crash, out-of-memory and timeout inputs written by this run.
  crashes="$(find "artifacts/$t" -type f -newer "$STAMP" \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)"
  printf '%-18s %8s %10s %8s %8s\n' "$t" "$SECS" "${runs:-?}" "$corpus" "$crashes"
  if [ "$rc" -ne 0 ]; then
    FAILED=1
    echo "  $t exited $rc; see $LOG" >&2
    grep -a -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$LOG" >&2 || true
  fi
done
exit "$FAILED"
