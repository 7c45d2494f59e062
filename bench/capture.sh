#!/usr/bin/env bash
# Capture proxy benchmark, on loopback. One upstream (nginx serving a
# CoreVia-sized Social Feed JSON reply from a static file), one load tool
# (wrk), three paths:
#   direct            wrk -> nginx upstream
#   nginx proxy       wrk -> nginx reverse proxy (no recording) -> upstream
#   tapedeck capture  wrk -> tapedeck capture (recording every exchange) -> upstream
# (1) saturation: requests/s, p50, p99 and the ratios;
# (2) ~1,000 req/s (wrk with a per-connection delay): p50/p99 and the p99
#     tapedeck adds over the direct path;
# then the dropped-record count from tapedeck's status endpoint and journal.
#
# Usage: bench/capture.sh [SECONDS_PER_RUN (default 10)] [CONNECTIONS (default 64)]
# Needs: cargo, python3; installs wrk and nginx from Debian when missing.
set -euo pipefail

DUR="${1:-10}"
CONNS="${2:-64}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

install() {
  echo "installing $*..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; }
}
command -v wrk >/dev/null || install wrk
NGINX="$(command -v nginx || true)"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  install nginx-light || install nginx
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

(cd "$ROOT" && cargo build --release --quiet -p tapedeck)
BIN="$ROOT/target/release/tapedeck"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# A Social Feed page as the CoreVia API returns it: 20 posts, ~5 KB.
mkdir -p "$WORK/www/api/v1/social"
python3 - "$WORK/www/api/v1/social/feed" <<'PY'
import json, sys
items = [{"id": 1000 + i, "author": {"id": 40 + i % 7, "username": f"student{i % 45 + 1}", "role": "student"},
          "text": f"Leg day done: {5 + i % 4}x5 squats at {60 + i * 2.5} kg, new personal best #{i}",
          "likes": (i * 37) % 211, "comments": (i * 11) % 17, "liked_by_me": i % 3 == 0,
          "created_at": f"2026-11-26T10:{i:02d}:00Z"} for i in range(20)]
json.dump({"items": items, "total": 200, "limit": 20, "offset": 0}, open(sys.argv[1], "w"))
PY
BODY_BYTES=$(wc -c <"$WORK/www/api/v1/social/feed")
# nginx workers run as an unprivileged user: let them read the file.
chmod -R a+rX "$WORK"

UP_PORT=$(free_port); NGX_PORT=$(free_port); TD_PORT=$(free_port); ST_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  upstream api { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$UP_PORT;
    root $WORK/www;
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$UP_PORT"; wait_port "$NGX_PORT"

"$BIN" capture --upstream "http://127.0.0.1:$UP_PORT" --listen "127.0.0.1:$TD_PORT" \
  --out "$WORK/journals" --status-listen "$ST_PORT" >"$WORK/capture.log" 2>&1 &
TD_PID=$!
PIDS+=($TD_PID)
wait_port "$TD_PORT"; wait_port "$ST_PORT"

PATH_Q="/api/v1/social/feed"
cat >"$WORK/paced.lua" <<'LUA'
-- Each connection waits 10 ms after every response: 10 connections give
-- about 1,000 requests/s, far below saturation.
function delay() return 10 end
LUA

# wrk --latency output -> "rps p50_ms p99_ms"
run_wrk() {
  local url="$1"; shift
  wrk "$@" --latency "$url" >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out" >&2; exit 1; }
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, u = float(m.group(1)), m.group(2)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: (.*)", t)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {errs.group(1) if errs else 0}")
if sock: print("socket errors: " + sock.group(1), file=sys.stderr)
PY
}

# Warm up every path (connection pools, page cache).
for p in "$UP_PORT" "$NGX_PORT" "$TD_PORT"; do
  wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$p$PATH_Q" >/dev/null
done

echo "== saturation: wrk -t2 -c$CONNS -d${DUR}s, ${BODY_BYTES}-byte JSON reply, $(nproc) cores =="
read -r D_RPS D_P50 D_P99 D_ERR < <(run_wrk "http://127.0.0.1:$UP_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
read -r N_RPS N_P50 N_P99 N_ERR < <(run_wrk "http://127.0.0.1:$NGX_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
read -r T_RPS T_P50 T_P99 T_ERR < <(run_wrk "http://127.0.0.1:$TD_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
printf "%-18s %10s %10s %10s %8s\n" path "req/s" "p50 ms" "p99 ms" "non-2xx"
printf "%-18s %10s %10s %10s %8s\n" direct "$D_RPS" "$D_P50" "$D_P99" "$D_ERR"
printf "%-18s %10s %10s %10s %8s\n" "nginx proxy" "$N_RPS" "$N_P50" "$N_P99" "$N_ERR"
printf "%-18s %10s %10s %10s %8s\n" "tapedeck capture" "$T_RPS" "$T_P50" "$T_P99" "$T_ERR"
if [ "$D_ERR" != 0 ] || [ "$N_ERR" != 0 ] || [ "$T_ERR" != 0 ]; then
  echo "error: non-2xx responses; see $WORK/nginx-error.log" >&2; cat "$WORK/nginx-error.log" >&2; exit 1
fi
python3 -c "print(f'tapedeck/nginx throughput: {$T_RPS/$N_RPS:.2f}x   tapedeck/direct: {$T_RPS/$D_RPS:.2f}x   nginx/direct: {$N_RPS/$D_RPS:.2f}x')"

echo
echo "== paced: wrk -t1 -c10 -d${DUR}s with 10 ms think time per connection (~1,000 req/s) =="
read -r PD_RPS PD_P50 PD_P99 _ < <(run_wrk "http://127.0.0.1:$UP_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
read -r PN_RPS PN_P50 PN_P99 _ < <(run_wrk "http://127.0.0.1:$NGX_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
read -r PT_RPS PT_P50 PT_P99 _ < <(run_wrk "http://127.0.0.1:$TD_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
printf "%-18s %10s %10s %10s\n" path "req/s" "p50 ms" "p99 ms"
printf "%-18s %10s %10s %10s\n" direct "$PD_RPS" "$PD_P50" "$PD_P99"
printf "%-18s %10s %10s %10s\n" "nginx proxy" "$PN_RPS" "$PN_P50" "$PN_P99"
printf "%-18s %10s %10s %10s\n" "tapedeck capture" "$PT_RPS" "$PT_P50" "$PT_P99"
python3 -c "print(f'added p99 at ~{$PT_RPS:.0f} req/s: tapedeck {$PT_P99-$PD_P99:+.3f} ms, nginx {$PN_P99-$PD_P99:+.3f} ms')"

echo
STATUS=$(curl -s "http://127.0.0.1:$ST_PORT/")
kill -TERM "$TD_PID"
for _ in $(seq 200); do kill -0 "$TD_PID" 2>/dev/null || break; sleep 0.1; done
echo "tapedeck status at the end: $STATUS"
echo "tapedeck summary: $(tail -n +2 "$WORK/capture.log" | grep -v '^  ' | tr '\n' ' ')"
echo "journal: $(du -sh "$WORK/journals" | cut -f1) on disk"
