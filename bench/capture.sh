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
# (3) 10,000 idle keep-alive client connections held open while a paced
#     run goes through: errors and tapedeck's RSS;
# (4) with SOAK_SECONDS=600: a steady ~1,000 req/s soak sampling RSS and
#     open fds every 10 s, printing the slopes (not run by default).
#
# Usage: [IDLE_CONNS=10000] [SOAK_SECONDS=600] bench/capture.sh [SECONDS_PER_RUN (default 10)] [CONNECTIONS (default 64)]
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

td_dropped() {
  curl -s "http://127.0.0.1:$ST_PORT/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped"])'
}
td_rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$TD_PID/status"; }
td_fds() { ls "/proc/$TD_PID/fd" | wc -l; }

echo "== saturation: wrk -t2 -c$CONNS -d${DUR}s, ${BODY_BYTES}-byte JSON reply, $(nproc) cores =="
read -r D_RPS D_P50 D_P99 D_ERR < <(run_wrk "http://127.0.0.1:$UP_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
read -r N_RPS N_P50 N_P99 N_ERR < <(run_wrk "http://127.0.0.1:$NGX_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
DROP0=$(td_dropped)
read -r T_RPS T_P50 T_P99 T_ERR < <(run_wrk "http://127.0.0.1:$TD_PORT$PATH_Q" -t2 -c"$CONNS" -d"${DUR}s")
SAT_DROPPED=$(( $(td_dropped) - DROP0 ))
printf "%-18s %10s %10s %10s %8s\n" path "req/s" "p50 ms" "p99 ms" "non-2xx"
printf "%-18s %10s %10s %10s %8s\n" direct "$D_RPS" "$D_P50" "$D_P99" "$D_ERR"
printf "%-18s %10s %10s %10s %8s\n" "nginx proxy" "$N_RPS" "$N_P50" "$N_P99" "$N_ERR"
printf "%-18s %10s %10s %10s %8s\n" "tapedeck capture" "$T_RPS" "$T_P50" "$T_P99" "$T_ERR"
if [ "$D_ERR" != 0 ] || [ "$N_ERR" != 0 ] || [ "$T_ERR" != 0 ]; then
  echo "error: non-2xx responses; see $WORK/nginx-error.log" >&2; cat "$WORK/nginx-error.log" >&2; exit 1
fi
echo "tapedeck dropped records during the saturation run: $SAT_DROPPED of $(python3 -c "print(round($T_RPS*$DUR))") (the writer thread shares the 2 cores with wrk and nginx; traffic is never slowed down for it)"
python3 -c "print(f'tapedeck/nginx throughput: {$T_RPS/$N_RPS:.2f}x   tapedeck/direct: {$T_RPS/$D_RPS:.2f}x   nginx/direct: {$N_RPS/$D_RPS:.2f}x')"

echo
echo "== paced: wrk -t1 -c10 -d${DUR}s with 10 ms think time per connection (~1,000 req/s) =="
read -r PD_RPS PD_P50 PD_P99 _ < <(run_wrk "http://127.0.0.1:$UP_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
read -r PN_RPS PN_P50 PN_P99 _ < <(run_wrk "http://127.0.0.1:$NGX_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
DROP0=$(td_dropped)
read -r PT_RPS PT_P50 PT_P99 _ < <(run_wrk "http://127.0.0.1:$TD_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
PACED_DROPPED=$(( $(td_dropped) - DROP0 ))
printf "%-18s %10s %10s %10s\n" path "req/s" "p50 ms" "p99 ms"
printf "%-18s %10s %10s %10s\n" direct "$PD_RPS" "$PD_P50" "$PD_P99"
printf "%-18s %10s %10s %10s\n" "nginx proxy" "$PN_RPS" "$PN_P50" "$PN_P99"
printf "%-18s %10s %10s %10s\n" "tapedeck capture" "$PT_RPS" "$PT_P50" "$PT_P99"
python3 -c "print(f'added p99 at ~{$PT_RPS:.0f} req/s: tapedeck {$PT_P99-$PD_P99:+.3f} ms, nginx {$PN_P99-$PD_P99:+.3f} ms')"
echo "tapedeck dropped records during the paced run: $PACED_DROPPED"

echo
echo "== a 1 GiB download through tapedeck (the record keeps the first --max-body, 1 MiB) =="
truncate -s 1G "$WORK/www/big.bin"
chmod a+r "$WORK/www/big.bin"
RSS_START=$(td_rss_kib)
: >"$WORK/rss.samples"
( while [ ! -f "$WORK/big.done" ]; do td_rss_kib >>"$WORK/rss.samples"; sleep 0.2; done ) &
SAMPLER=$!
BIG=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "http://127.0.0.1:$TD_PORT/big.bin")
touch "$WORK/big.done"; wait "$SAMPLER" || true
RSS_PEAK=$(sort -n "$WORK/rss.samples" | tail -1)
read -r BIG_CODE BIG_BYTES BIG_SECS <<<"$BIG"
echo "status $BIG_CODE, $BIG_BYTES bytes in ${BIG_SECS}s; tapedeck RSS $((RSS_START/1024)) MiB before, peak $((RSS_PEAK/1024)) MiB during"

IDLE="${IDLE_CONNS:-10000}"
if [ "$IDLE" -gt 0 ]; then
  echo
  echo "== $IDLE idle keep-alive connections held open during a paced run =="
  RSS_BEFORE=$(td_rss_kib)
  python3 - "$TD_PORT" "$IDLE" "$PATH_Q" "$WORK/idle.ready" "$WORK/idle.stop" <<'PY' &
import os, resource, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
port, n, path, ready, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
req = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
def one(_):
    # One request, response read in full; the connection then stays open idle.
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(rest) < length:
            rest += s.recv(65536)
        return s
    except Exception:
        return None
with ThreadPoolExecutor(64) as pool:
    results = list(pool.map(one, range(n)))
socks = [s for s in results if s is not None]
failed = n - len(socks)
open(ready, "w").write(f"{len(socks)} {failed}\n")
for _ in range(600):
    if os.path.exists(stop):
        break
    time.sleep(0.1)
alive = 0
for s in socks:
    try:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
    except Exception:
        pass
    s.close()
print(f"idle connections still open at the end: {alive} of {len(socks)}")
PY
  IDLE_PID=$!
  PIDS+=($IDLE_PID)
  for _ in $(seq 3000); do [ -f "$WORK/idle.ready" ] && break; sleep 0.1; done
  [ -f "$WORK/idle.ready" ] || { echo "error: could not open $IDLE connections in 300 s" >&2; exit 1; }
  read -r OPENED FAILED <"$WORK/idle.ready"
  RSS_IDLE=$(td_rss_kib)
  DROP0=$(td_dropped)
  read -r I_RPS I_P50 I_P99 I_ERR < <(run_wrk "http://127.0.0.1:$TD_PORT$PATH_Q" -t1 -c10 -d"${DUR}s" -s "$WORK/paced.lua")
  touch "$WORK/idle.stop"
  wait "$IDLE_PID" || true
  echo "opened $OPENED idle connections ($FAILED failed); tapedeck RSS $((RSS_BEFORE/1024)) MiB -> $((RSS_IDLE/1024)) MiB with them open"
  echo "paced run beside them: $I_RPS req/s, p50 $I_P50 ms, p99 $I_P99 ms, non-2xx $I_ERR, dropped $(( $(td_dropped) - DROP0 ))"
fi

if [ -n "${SOAK_SECONDS:-}" ]; then
  echo
  echo "== soak: ~1,000 req/s for ${SOAK_SECONDS}s, RSS and open fds every 10 s =="
  wrk -t1 -c10 -d"${SOAK_SECONDS}s" -s "$WORK/paced.lua" "http://127.0.0.1:$TD_PORT$PATH_Q" >"$WORK/soak.out" 2>&1 &
  SOAK_PID=$!
  : >"$WORK/soak.samples"
  START=$(date +%s)
  while kill -0 "$SOAK_PID" 2>/dev/null; do
    echo "$(( $(date +%s) - START )) $(td_rss_kib) $(td_fds)" >>"$WORK/soak.samples"
    sleep 10
  done
  python3 - "$WORK/soak.samples" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
rows = rows[1:] or rows  # the first sample is taken before warm-up
def slope(i):
    xs = [r[0] for r in rows]; ys = [r[i] for r in rows]
    n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs) or 1
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
print(f"samples: {len(rows)}; RSS {rows[0][1]/1024:.1f} -> {rows[-1][1]/1024:.1f} MiB, slope {slope(1)*60/1024:+.3f} MiB/min; "
      f"fds {rows[0][2]:.0f} -> {rows[-1][2]:.0f}, slope {slope(2)*60:+.3f} fds/min")
PY
  grep -E "Requests/sec|requests in" "$WORK/soak.out"
fi

echo
STATUS=$(curl -s "http://127.0.0.1:$ST_PORT/")
kill -TERM "$TD_PID"
for _ in $(seq 200); do kill -0 "$TD_PID" 2>/dev/null || break; sleep 0.1; done
echo "tapedeck status at the end: $STATUS"
echo "tapedeck summary: $(tail -n +2 "$WORK/capture.log" | grep -v '^  \|^status on\|^metrics on' | tr '\n' ' ')"
echo "journal: $(du -sh "$WORK/journals" | cut -f1) on disk"
