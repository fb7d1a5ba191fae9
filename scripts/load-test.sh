#!/usr/bin/env bash
# The mixed-load fault test at full size: 50 000 requests from 64 connections,
# mixing valid, invalid and first-sight tokens, on SQLite and on PostgreSQL.
# Passes when there is no 5xx, no wrong answer, and exactly one row per
# distinct accepted sub. `cargo test` runs the same test scaled down (2 000 / 16).
#
#   bash scripts/load-test.sh                          # full size, release build
#   LOAD_REQUESTS=100000 bash scripts/load-test.sh     # any size
set -euo pipefail
cd "$(dirname "$0")/.."
export LOAD_REQUESTS="${LOAD_REQUESTS:-50000}" LOAD_CONNECTIONS="${LOAD_CONNECTIONS:-64}"
echo "mixed load: $LOAD_REQUESTS requests from $LOAD_CONNECTIONS connections"
time cargo test --release --locked --test api a_mixed_load_gets_only_right_answers -- --nocapture
