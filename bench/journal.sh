#!/usr/bin/env bash
# Journal benchmark on CoreVia-shaped exchanges (JSON bodies of 0.2-4 KiB,
# 20,000 per journal): exchanges written per second, MB/s of JSON lines read
# back, and the compression ratio (raw JSON lines / journal bytes). The bench
# also prints both figures per CPU-second, which stay meaningful on a machine
# busy with other work, beside the wall-clock ones.
#
# Then a by-hand check that a journal is plain zstd + JSON lines:
# `zstdcat FILE | jq -c .` over a journal written by `tapedeck sessions import-har`.
#
# Usage: bench/journal.sh [MEASUREMENT_SECONDS (default 3)]
# Needs: cargo; zstd and jq for the by-hand check (skipped when missing).
set -euo pipefail

SECS="${1:-3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

cargo bench -p tapedeck-sessions --bench journal -- --warm-up-time 1 --measurement-time "$SECS"

if command -v zstdcat >/dev/null && command -v jq >/dev/null; then
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  cargo build --release --quiet
  cat > "$WORK/one.har" <<'HAR'
{"log":{"version":"1.2","entries":[{"startedDateTime":"2026-11-26T10:00:00Z","time":12,
 "request":{"method":"GET","url":"http://127.0.0.1:8000/api/v1/social/feed?limit=20","headers":[]},
 "response":{"status":200,"content":{"mimeType":"application/json","text":"{\"items\":[],\"total\":0}"}}}]}}
HAR
  target/release/tapedeck sessions import-har "$WORK/one.har" -o "$WORK/one.jsonl.zst"
  echo "zstdcat | jq -c . on a finished journal:"
  zstdcat "$WORK/one.jsonl.zst" | jq -c '{type, method: .request.method, uri: .request.uri, status: .response.status}'
fi
