#!/usr/bin/env bash
# bench/run.sh -- benchmark the API with wrk and print one markdown table.
#
# Usage (from anywhere; paths are relative to this file):
#   bash bench/run.sh
#   DURATION=10 WARMUP=2 CONNS=32 PORT=6090 PEERS=1 bash bench/run.sh
#
# What it does:
#   1. cargo build --release --locked; installs wrk with apt-get if missing.
#   2. In a fresh mktemp -d folder (database, development key, tokens; the
#      repo's .env / .dev-issuer / app.db are never read or written), starts
#      `actix-auth0-api dev` on 127.0.0.1:$PORT and waits for GET /readyz = 200.
#   3. For /api/public (no token), /api/private (one repeated token) and
#      /api/private (1000 users' tokens round-robin, bench/wrk_tokens.lua):
#      WARMUP s of wrk (discarded), then DURATION s measured with --latency.
#      All 1000 user rows are created (and checked with `users --json`)
#      before the 1000-user route is measured.
#   4. Reads the server's peak RSS (VmHWM), stops the server, then (unless
#      PEERS=0, or ../shared/peers is absent beside the repo) runs the Python
#      peers' bench.sh for django and flask with the same settings.
#   5. Prints the table, writes bench/results/latest.md (table, machine facts,
#      commands), bench/results/results.json, bench/results/requests-per-second.svg
#      (bench/chart.py) and the raw wrk outputs in bench/results/raw/ (git-ignored).
#
# Env: DURATION (10) WARMUP (2) CONNS (32) ROUNDS (3) PIN (1) PORT (6090) PEERS (1)
# PIN=1: server (one worker) on core 0, wrk (one thread) on core 1; PIN=0: both
# unpinned, server one worker per core, wrk -t2 (the peers' harness always is).
# Each route is measured ROUNDS times, interleaved; the median round is reported.
# Exit status: non-zero if a step fails, if one of our rows has non-2xx
# responses or zero requests/s, or if the peer comparison was asked for and failed.
set -euo pipefail

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-32}"
PORT="${PORT:-6090}"
PEERS="${PEERS:-1}"
ROUNDS="${ROUNDS:-3}"
PIN="${PIN:-1}"
# With PIN=1 (the default) the server runs one worker on core 0 and wrk one
# thread on core 1, so that the load generator never steals the server's CPU
# (unpinned, the two fight over both cores and p99 measures the scheduler).
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  WRK_THREADS=1; SERVER_WORKERS=1; SERVER_PIN=(taskset -c 0); WRK_PIN=(taskset -c 1)
else
  PIN=0; WRK_THREADS=2; SERVER_WORKERS=""; SERVER_PIN=(); WRK_PIN=()
fi
NUSERS=1000

for v in DURATION WARMUP CONNS PORT ROUNDS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/.." && pwd)"
RESULTS="$BENCH/results"
RAW="$RESULTS/raw"
BIN="$REPO/target/release/actix-auth0-api"
PEERS_DIR="$REPO/../shared/peers"
BASE="http://127.0.0.1:$PORT"
CMDLINE="DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS ROUNDS=$ROUNDS PIN=$PIN PORT=$PORT PEERS=$PEERS bash bench/run.sh"

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- cleanup
WORK=""; SERVER_PID=""
stop_pid() {  # stop_pid PID: TERM, wait up to 10 s, then KILL
  local pid="$1"; [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SERVER_PID"; SERVER_PID=""
  [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build, wrk
log "cargo build --release --locked"
(cd "$REPO" && cargo build --release --locked)
[ -x "$BIN" ] || { echo "run.sh: $BIN missing after the build" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (apt-get)"
  { apt-get update -qq && apt-get install -y -qq wrk; } >&2
fi
command -v wrk >/dev/null || { echo "run.sh: wrk is not installed" >&2; exit 1; }

mkdir -p "$RAW"
rm -f "$RAW"/ours-*.txt "$RAW"/rounds-*.txt "$RAW"/server.log "$RAW"/peers*.txt "$RAW"/peers*.log "$RAW"/users.jsonl

WORK="$(mktemp -d /tmp/actix-auth0-bench.XXXXXX)"
DATA_DIR="$WORK/dev-issuer"
DB="$WORK/bench.db"

# The binary always runs with its working directory in $WORK, so a .env in the
# repo (read by dotenvy) cannot change what is measured.
app() {  # app ARGS...: the binary with the benchmark's environment
  (cd "$WORK" && HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="$DB" RUST_LOG=warn "$BIN" "$@")
}

cpu_busy() {  # percent of all CPU time not idle/iowait over 1 s (whole machine)
  local a b idle total=0 i
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  idle=$(( (b[4]+b[5]) - (a[4]+a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# ---------------------------------------------------------------- server
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run.sh: something already listens on 127.0.0.1:$PORT; set PORT=..." >&2; exit 1
fi

BUSY_BEFORE="$(cpu_busy)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "machine CPU busy before the run: ${BUSY_BEFORE}% (loadavg $LOAD_BEFORE)"
[ "$BUSY_BEFORE" -lt 10 ] || echo "run.sh: WARNING: machine not idle before the run (${BUSY_BEFORE}% busy); figures will be depressed" >&2

SERVER_CMD="PORT=$PORT DATABASE_URL=<tmp>/bench.db RUST_LOG=warn HOST=127.0.0.1${SERVER_WORKERS:+ WORKERS=$SERVER_WORKERS} ${SERVER_PIN[*]}${SERVER_PIN[*]:+ }target/release/actix-auth0-api dev --data-dir <tmp>/dev-issuer"
log "starting: $SERVER_CMD   (<tmp> = $WORK)"
(cd "$WORK" && HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="$DB" RUST_LOG=warn \
  WORKERS="$SERVER_WORKERS" exec "${SERVER_PIN[@]}" "$BIN" dev --data-dir "$DATA_DIR") >"$RAW/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ]; then ready=1; break; fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "run.sh: the server did not become ready on $BASE/readyz within 30 s; its output:" >&2
  cat "$RAW/server.log" >&2; exit 1
fi
log "server ready (pid $SERVER_PID)"

# ---------------------------------------------------------------- tokens
TOKEN="$(app token --sub bench --data-dir "$DATA_DIR" --ttl 2h)"
TOKENS_FILE="$WORK/tokens.txt"
app token --sub bench --data-dir "$DATA_DIR" --ttl 2h --count "$NUSERS" >"$TOKENS_FILE"
ntok="$(grep -c . "$TOKENS_FILE" || true)"
[ "$ntok" = "$NUSERS" ] || { echo "run.sh: expected $NUSERS tokens, got $ntok" >&2; exit 1; }

code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/api/private")"
[ "$code" = 200 ] || { echo "run.sh: /api/private with the bench token answered $code, not 200" >&2; exit 1; }

# ---------------------------------------------------------------- measuring
WRK_CMDS=()
declare -A R_RPS R_P50 R_P99 R_NON2XX R_SOCK R_REQS
ROW_KEYS=()

# measure KEY URL [wrk args...]: warm-up (discarded), then the measured run
show_args() {  # show_args ARGS...: the arguments, those with spaces in double quotes
  local a out=()
  for a in "$@"; do [[ "$a" == *" "* ]] && out+=("\"$a\"") || out+=("$a"); done
  echo "${out[*]}"
}
# (wrk options come before the URL, script arguments after "--")
measure() {
  local key="$1" url="$2"; shift 2
  local out line get opts=() sargs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && sargs=("$@")   # "--" and what follows
  log "$key: warm-up ${WARMUP}s"
  "${WRK_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" "${opts[@]}" "$url" "${sargs[@]}" >/dev/null
  log "$key: measuring ${DURATION}s"
  WRK_CMDS+=("${WRK_PIN[*]}${WRK_PIN[*]:+ }wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency $(show_args "${opts[@]}") $url${sargs[*]:+ $(show_args "${sargs[@]}")}")
  out="$("${WRK_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${opts[@]}" "$url" "${sargs[@]}")"
  printf '%s\n' "$out" >"$RAW/ours-$key-round$ROUND.txt"
  line="$(grep '^WRK ' <<<"$out" || true)"
  [ -n "$line" ] || { echo "run.sh: no WRK summary line from wrk for $key:" >&2; echo "$out" >&2; exit 1; }
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
  # one line per round: rps p50_ms p99_ms non2xx sock requests
  printf '%s %s %s %s %s %s\n' "$(get rps)" \
    "$(awk -v u="$(get p50_us)" 'BEGIN{printf "%.2f", u/1000}')" \
    "$(awk -v u="$(get p99_us)" 'BEGIN{printf "%.2f", u/1000}')" \
    "$(get non2xx)" "$(get sock_connect)/$(get sock_read)/$(get sock_write)/$(get sock_timeout)" \
    "$(get requests)" >>"$RAW/rounds-$key.txt"
  log "$key (round $ROUND): $(tail -1 "$RAW/rounds-$key.txt")"
}

# summarize KEY: the round with the median requests/s stands for the route
# (its rps, p50, p99); non-2xx and socket errors are summed over all rounds.
summarize() {
  local key="$1" median
  median="$(sort -n "$RAW/rounds-$key.txt" | sed -n "$(( ($(wc -l <"$RAW/rounds-$key.txt") + 1) / 2 ))p")"
  read -r R_RPS[$key] R_P50[$key] R_P99[$key] _ _ R_REQS[$key] <<<"$median"
  R_NON2XX[$key]="$(awk '{s+=$4} END{print s+0}' "$RAW/rounds-$key.txt")"
  R_SOCK[$key]="$(awk '{split($5,a,"/"); c+=a[1]; r+=a[2]; w+=a[3]; t+=a[4]} END{print c"/"r"/"w"/"t}' "$RAW/rounds-$key.txt")"
  ROW_KEYS+=("$key")
  log "$key: median of $ROUNDS rounds rps=${R_RPS[$key]} p50=${R_P50[$key]}ms p99=${R_P99[$key]}ms non2xx=${R_NON2XX[$key]}"
}

REPORT_LUA="$BENCH/wrk_report.lua"
TOKENS_LUA="$BENCH/wrk_tokens.lua"

# Create all user rows first: one curl process, one request per token, then
# check the users table holds every bench-N sub.
log "creating the $NUSERS users (one request per token)"
CURL_CFG="$WORK/curl-users.cfg"
first=1
while IFS= read -r t; do
  [ "$first" = 1 ] || echo next   # a new transfer with its own header
  first=0
  printf 'url = "%s/api/private"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$BASE" "$t"
done <"$TOKENS_FILE" >"$CURL_CFG"
codes="$(curl -s -K "$CURL_CFG")"
bad="$(grep -vc '^200$' <<<"$codes" || true)"
if [ "$bad" != 0 ]; then
  echo "run.sh: $bad of $NUSERS first requests with the users' tokens were not 200:" >&2
  sort <<<"$codes" | uniq -c >&2; exit 1
fi
nusers=0
for _ in $(seq 50); do
  app users --json >"$RAW/users.jsonl"
  nusers="$(grep -cE '"sub": ?"bench-[0-9]+"' "$RAW/users.jsonl" || true)"
  [ "$nusers" -ge "$NUSERS" ] && break
  sleep 0.1
done
[ "$nusers" -ge "$NUSERS" ] || { echo "run.sh: users table has $nusers bench-N rows, expected $NUSERS" >&2; exit 1; }
log "users table: $nusers bench-N rows ($(wc -l <"$RAW/users.jsonl") rows in all)"

# Rounds interleave the routes, so that a slow spell of the machine hits
# them all alike; the median round of each route is reported.
for ROUND in $(seq "$ROUNDS"); do
  measure public "$BASE/api/public" -s "$REPORT_LUA"
  measure private-1token "$BASE/api/private" -s "$REPORT_LUA" -H "Authorization: Bearer $TOKEN"
  measure private-1000users "$BASE/api/private" -s "$TOKENS_LUA" -- "$TOKENS_FILE" "$WRK_THREADS"
done
for key in public private-1token private-1000users; do summarize "$key"; done

# ---------------------------------------------------------------- peak RSS, stop
kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server died during the run:" >&2; cat "$RAW/server.log" >&2; exit 1; }
HWM_KB="$(awk '/^VmHWM:/{print $2}' "/proc/$SERVER_PID/status")"
RSS_MB="$(awk -v k="$HWM_KB" 'BEGIN{printf "%.1f", k/1024}')"
log "server peak RSS (VmHWM): ${RSS_MB} MB"
echo "VmHWM ${HWM_KB} kB" >"$RAW/rss.txt"
stop_pid "$SERVER_PID"; SERVER_PID=""

# ---------------------------------------------------------------- peers
PEER_NOTE=""; PEER_FAILED=0
declare -A P_RPS P_P50 P_P99 P_NON2XX P_SOCK
PEER_KEYS=()
if [ "$PEERS" = 0 ]; then
  PEER_NOTE="peer comparison skipped (PEERS=0)"
elif [ ! -f "$PEERS_DIR/bench.sh" ]; then
  PEER_NOTE="peer comparison skipped ($PEERS_DIR/bench.sh not found)"
else
  log "peers: bash ../shared/peers/setup.sh"
  if ! (cd "$REPO" && bash ../shared/peers/setup.sh) >"$RAW/peers-setup.txt" 2>&1; then
    PEER_NOTE="peer comparison FAILED: setup.sh failed (see bench/results/raw/peers-setup.txt)"; PEER_FAILED=1
    tail -20 "$RAW/peers-setup.txt" >&2
  else
    log "peers: DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS bash ../shared/peers/bench.sh django flask"
    if ! (cd "$REPO" && DURATION="$DURATION" WARMUP="$WARMUP" CONNS="$CONNS" \
          bash ../shared/peers/bench.sh django flask) 2>&1 | tee "$RAW/peers.txt" >&2; then
      PEER_NOTE="peer comparison FAILED: bench.sh failed (see bench/results/raw/peers.txt)"; PEER_FAILED=1
    else
      # summary lines: <peer> <route> rps=... p50=...ms p99=...ms non2xx=... sock_err(c/r/w/t)=a/b/c/d
      while read -r peer route rest; do
        case "$route" in /api/public|/api/private) ;; *) continue ;; esac
        k="$peer $route"
        P_RPS[$k]="$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$rest")"
        P_P50[$k]="$(sed -n 's/.*p50=\([0-9.]*\)ms.*/\1/p' <<<"$rest")"
        P_P99[$k]="$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' <<<"$rest")"
        P_NON2XX[$k]="$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$rest")"
        P_SOCK[$k]="$(sed -n 's/.*sock_err([^)]*)=\([0-9/]*\).*/\1/p' <<<"$rest")"
        PEER_KEYS+=("$k")
      done < <(sed -n '/^## summary/,$p' "$RAW/peers.txt" | grep -E '^[a-z]+ +/api/' || true)
      # bench.sh leaves its wrk outputs and server logs in a /tmp/peers-logs.* folder:
      # move them beside ours
      plogs="$(sed -n 's/^## summary.*logs in \([^)]*\)).*/\1/p' "$RAW/peers.txt")"
      if [[ "$plogs" == /tmp/peers-logs.* ]] && [ -d "$plogs" ]; then
        for f in "$plogs"/*; do [ -f "$f" ] && cp "$f" "$RAW/peers-$(basename "$f")"; done
        rm -rf "$plogs"
      fi
      if [ ${#PEER_KEYS[@]} -eq 0 ]; then
        PEER_NOTE="peer comparison FAILED: no summary lines in bench.sh output (see bench/results/raw/peers.txt)"; PEER_FAILED=1
      fi
    fi
  fi
fi

# ---------------------------------------------------------------- table
PUB_RPS="${R_RPS[public]}"
ratio() { awk -v a="$1" -v b="$PUB_RPS" 'BEGIN{ if (b<=0) {print "n/a"; exit} r=a/b; printf (r>=0.1 ? "%.2f" : "%.3f"), r }'; }
route_label() {
  case "$1" in
    public) echo "/api/public" ;;
    private-1token) echo "/api/private (1 token)" ;;
    private-1000users) echo "/api/private ($NUSERS users round-robin)" ;;
  esac
}

TABLE="| server | route | requests/s | ratio to our /api/public | p50 ms | p99 ms | non-2xx | peak RSS MB |
|---|---|---:|---:|---:|---:|---:|---:|"
JSON_ROWS=()
SOCK_LINE="socket errors (connect/read/write/timeout):"
for k in "${ROW_KEYS[@]}"; do
  label="$(route_label "$k")"
  rps="$(awk -v r="${R_RPS[$k]}" 'BEGIN{printf "%.0f", r}')"
  TABLE+=$'\n'"| ours | $label | $rps | $(ratio "${R_RPS[$k]}") | ${R_P50[$k]} | ${R_P99[$k]} | ${R_NON2XX[$k]} | $RSS_MB |"
  JSON_ROWS+=("{\"server\": \"ours\", \"route\": \"$label\", \"rps\": ${R_RPS[$k]}, \"p50_ms\": ${R_P50[$k]}, \"p99_ms\": ${R_P99[$k]}, \"non2xx\": ${R_NON2XX[$k]}, \"socket_errors\": \"${R_SOCK[$k]}\", \"peak_rss_mb\": $RSS_MB}")
  SOCK_LINE+=" ours $label ${R_SOCK[$k]};"
done
for k in "${PEER_KEYS[@]}"; do
  peer="${k%% *}"; route="${k#* }"
  rps="$(awk -v r="${P_RPS[$k]}" 'BEGIN{printf "%.0f", r}')"
  TABLE+=$'\n'"| $peer | $route | $rps | $(ratio "${P_RPS[$k]}") | ${P_P50[$k]} | ${P_P99[$k]} | ${P_NON2XX[$k]} | n/a |"
  JSON_ROWS+=("{\"server\": \"$peer\", \"route\": \"$route\", \"rps\": ${P_RPS[$k]}, \"p50_ms\": ${P_P50[$k]}, \"p99_ms\": ${P_P99[$k]}, \"non2xx\": ${P_NON2XX[$k]}, \"socket_errors\": \"${P_SOCK[$k]}\", \"peak_rss_mb\": null}")
  SOCK_LINE+=" $peer $route ${P_SOCK[$k]};"
done

# The same round's routes ran back to back: their ratio is the fair one.
paired() {
  paste "$RAW/rounds-$1.txt" "$RAW/rounds-public.txt" | awk '{print $1/$7}' | sort -n \
    | awk '{r[NR]=$1} END{printf "median %.2f, worst %.2f", r[int((NR+1)/2)], r[1]}'
}
WORST_P99="$(cat "$RAW"/rounds-*.txt | awk '$3>m{m=$3} END{print m+0}')"
PAIRED_LINE="per round, /api/private ÷ /api/public of the same round: 1 token $(paired private-1token); $NUSERS users $(paired private-1000users). Worst p99 of any round of ours: ${WORST_P99} ms."

VS_LINE=""
if [ -n "${P_RPS[django /api/private]:-}" ]; then
  VS_LINE="ours /api/private vs django /api/private: $(awk -v a="${R_RPS[private-1token]}" -v b="${P_RPS[django /api/private]}" 'BEGIN{printf "%.1f", a/b}')x"
  VS_LINE+=$'\n'"ours /api/private ($NUSERS users) vs django /api/private: $(awk -v a="${R_RPS[private-1000users]}" -v b="${P_RPS[django /api/private]}" 'BEGIN{printf "%.1f", a/b}')x"
fi

# ---------------------------------------------------------------- facts, files
NPROC="$(nproc)"
CPU_MODEL="$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)"
[ -n "$CPU_MODEL" ] || CPU_MODEL="$(awk -F': *' '/^(Hardware|cpu model|Model)/{print $2; exit}' /proc/cpuinfo)"
KERNEL="$(uname -srm)"
DATE="$(date -u +%FT%TZ)"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  COMMIT+=" (with uncommitted changes under src/ or Cargo.*)"
fi
WRK_VERSION="$(wrk -v 2>&1 | head -1 || true)"
RUSTC_VERSION="$(rustc --version 2>/dev/null || echo unknown)"
BUSY_AFTER="$(cpu_busy)"

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
{
  echo "{"
  echo "  \"title\": \"Requests per second (wrk -t$WRK_THREADS -c$CONNS, ${DURATION}s after ${WARMUP}s warm-up)\","
  echo "  \"subtitle\": $(json_str "$DATE, commit $COMMIT, $NPROC cores: $CPU_MODEL"),"
  echo "  \"date\": \"$DATE\", \"commit\": $(json_str "$COMMIT"), \"nproc\": $NPROC,"
  echo "  \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"connections\": $CONNS, \"wrk_threads\": $WRK_THREADS,"
  echo "  \"rows\": ["
  for i in "${!JSON_ROWS[@]}"; do
    sep=","; [ "$i" -eq $(( ${#JSON_ROWS[@]} - 1 )) ] && sep=""
    echo "    ${JSON_ROWS[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} >"$RESULTS/results.json"
python3 "$BENCH/chart.py" "$RESULTS/results.json" "$RESULTS/requests-per-second.svg"

{
  echo "# Benchmark results"
  echo
  echo "$TABLE"
  echo
  echo "$SOCK_LINE"
  echo
  echo "$PAIRED_LINE"
  [ -z "$VS_LINE" ] || { echo; echo "$VS_LINE"; }
  [ -z "$PEER_NOTE" ] || { echo; echo "$PEER_NOTE"; }
  echo
  echo "![requests per second](requests-per-second.svg)"
  echo
  echo "## Machine"
  echo
  echo "- date: $DATE"
  echo "- commit: $COMMIT"
  if [ "$PIN" = 1 ]; then
    echo "- cores (nproc): $NPROC; our server pinned to core 0 with one worker, wrk (one thread) to core 1; the peers' harness runs unpinned (gunicorn 2 workers, wrk -t2)"
  else
    echo "- cores (nproc): $NPROC, shared by wrk and the server (unpinned)"
  fi
  echo "- CPU: $CPU_MODEL"
  echo "- kernel: $KERNEL"
  echo "- $RUSTC_VERSION; $WRK_VERSION"
  echo "- machine CPU busy before the run: ${BUSY_BEFORE}% (loadavg $LOAD_BEFORE); after: ${BUSY_AFTER}%"
  echo
  echo "## Command"
  echo
  echo '```'
  echo "$CMDLINE"
  echo '```'
  echo
  echo "Server: \`$SERVER_CMD\` (cwd and <tmp> a fresh \`mktemp -d\` folder)."
  echo "Measured runs (each after a ${WARMUP}s warm-up with the same arguments; \$TOKEN is one token, tokens.txt holds $NUSERS tokens for subs bench-1..bench-$NUSERS, all rows created before the run):"
  echo
  echo '```'
  for c in "${WRK_CMDS[@]}"; do
    # never write the token itself
    sed -e "s|$TOKEN|\$TOKEN|g" -e "s|$WORK|<tmp>|g" -e "s|$BENCH/|bench/|g" <<<"$c"
  done
  echo '```'
  echo
  echo "## Notes"
  echo
  echo "- non-2xx is wrk's status-error count (HTTP status > 399); no route redirects."
  echo "- peak RSS is the server's VmHWM after all three of our runs (one process), in MiB (raw/rss.txt)."
  echo "- the table's ratio divides medians of the routes, which may come from different rounds; the per-round line above pairs each round's routes."
  echo "- the $NUSERS-user route sets the Authorization header from Lua for every request (bench/wrk_tokens.lua); the other routes send a fixed request, so part of the gap between the two /api/private rows is wrk's own cost on the shared cores."
  if [ ${#PEER_KEYS[@]} -gt 0 ]; then
    echo "- peers: gunicorn with 2 sync workers, which answer \`Connection: close\` (a new TCP connection per request); their output is in raw/peers.txt, their wrk outputs and logs in raw/peers-*. They were run after our server was stopped."
  fi
  echo "- raw wrk outputs: bench/results/raw/ (not committed)."
} >"$RESULTS/latest.md"

# ---------------------------------------------------------------- print
echo
echo "$TABLE"
echo
echo "$SOCK_LINE"
echo "$PAIRED_LINE"
[ -z "$VS_LINE" ] || echo "$VS_LINE"
[ -z "$PEER_NOTE" ] || echo "$PEER_NOTE"
echo "(written: bench/results/latest.md, bench/results/results.json, bench/results/requests-per-second.svg, raw in bench/results/raw/)"

status=0
for k in "${ROW_KEYS[@]}"; do
  if [ "${R_NON2XX[$k]}" != 0 ] || awk -v r="${R_RPS[$k]}" 'BEGIN{exit !(r<=0)}'; then
    echo "run.sh: FAILED: ours $(route_label "$k"): rps=${R_RPS[$k]} non2xx=${R_NON2XX[$k]}" >&2; status=1
  fi
done
[ "$PEER_FAILED" = 0 ] || status=1
exit $status
