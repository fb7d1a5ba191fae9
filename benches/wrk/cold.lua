-- wrk script: the cold path. Every request carries a token the server has
-- never seen, each token is sent exactly once, and the script times the
-- window itself.
--
-- Usage: wrk -tT -cC -dBOUND -s benches/wrk/cold.lua URL -- TOKENS_FILE T
--   TOKENS_FILE  one token per line, sent as `Authorization: Bearer TOKEN`;
--                or, for DPoP (RFC 9449), `TOKEN PROOF` per line, sent as
--                `Authorization: DPoP TOKEN` and `DPoP: PROOF` (a token may
--                repeat from line to line; each proof is sent once).
--                T must equal wrk's -t.
--   BOUND        an upper bound only: benches/run.py interrupts wrk (SIGINT,
--                which wrk 4.x handles by reporting at once) as soon as every
--                thread has printed its COLD-THREAD-DONE line.
--
-- Why it is built this way (wrk 4.x):
-- * Thread i takes the disjoint slice [i*N/T, (i+1)*N/T) of the file, so no
--   token is sent twice, across threads or within one.
-- * wrk asks delay() before every request of every connection (the first one
--   included). delay() reserves the next token of the slice and answers 0 ms;
--   once the slice is fully reserved it answers a delay longer than any run,
--   so that connection sends nothing more: no request beyond the list is ever
--   made, hence none is counted (wrk's latency histogram included).
-- * request() sends a reserved token. wrk also calls request() once on thread
--   0 before the run, to check that the string parses as HTTP; that probe is
--   never sent, and is answered without consuming a token. A call with no
--   reservation after the run started (only after a socket error) sends
--   nothing and is counted as `unreserved`.
-- * When the slice's last response arrives the thread stops its own event
--   loop (wrk.thread:stop()) and prints COLD-THREAD-DONE.
-- * The window is timed with CLOCK_MONOTONIC through LuaJIT's FFI (wrk links
--   LuaJIT): os.clock() is CPU time and os.time() has 1 s resolution, and
--   wrk's own duration is the whole run (it sleeps -d or until SIGINT). The
--   window runs from the first request of any thread to the last response of
--   any thread.
-- * Latency percentiles are wrk's histogram (request write to response end),
--   which holds exactly the listed requests. wrk corrects it for coordinated
--   omission using its own run time, which run.py keeps close to the window
--   by interrupting wrk as soon as the threads are done.
--
-- done() prints one machine-readable line: COLD {json}.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cold_timespec;
int clock_gettime(int clk_id, cold_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("cold_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local NEVER_MS = 1e9 -- about 11 days: "do not send again"

-- main state: the thread objects, to read their counters in done()
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- thread state (globals, so that done() can read them with thread:get)
local tokens = {}
local proofs = {} -- DPoP proofs, by the index of their token; empty for bearer tokens
slice_len, reserved, sent, answered = 0, 0, 0, 0
ok200, other2xx, non2xx, unreserved = 0, 0, 0, 0
first_us, last_us, finished = 0, 0, 0
local started = false

function init(args)
  local path = args[1] or error("cold.lua: pass the token file after --")
  local nthreads = tonumber(args[2] or "1")
  local all = {}
  for line in io.lines(path) do
    if #line > 0 then all[#all + 1] = line end
  end
  local lo = math.floor(#all * tid / nthreads)
  local hi = math.floor(#all * (tid + 1) / nthreads)
  for i = lo + 1, hi do
    local token, proof = all[i]:match("^(%S+) (%S+)$")
    if token then
      tokens[#tokens + 1] = "DPoP " .. token -- one string per token: Lua interns them
      proofs[#tokens] = proof
    else
      tokens[#tokens + 1] = "Bearer " .. all[i]
    end
  end
  slice_len = #tokens
  assert(slice_len > 0, "cold.lua: thread " .. tid .. " has no tokens (fewer tokens than threads?)")
end

function delay()
  started = true
  if reserved < slice_len then
    reserved = reserved + 1
    return 0
  end
  return NEVER_MS
end

function request()
  if sent < reserved then
    sent = sent + 1
    if sent == 1 then first_us = now_us() end
    wrk.headers["Authorization"] = tokens[sent]
    wrk.headers["DPoP"] = proofs[sent]
    return wrk.format()
  end
  if not started then -- wrk's parse check before the run: never sent
    wrk.headers["Authorization"] = tokens[1]
    wrk.headers["DPoP"] = proofs[1]
    return wrk.format()
  end
  unreserved = unreserved + 1
  return ""
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 then
    ok200 = ok200 + 1
  elseif status >= 200 and status < 300 then
    other2xx = other2xx + 1
  else
    non2xx = non2xx + 1
  end
  if answered == slice_len then
    last_us = now_us()
    finished = 1
    io.write(string.format("COLD-THREAD-DONE tid=%d answered=%d\n", tid, answered))
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = { tokens = 0, sent = 0, answered = 0, ok200 = 0, other2xx = 0, non2xx = 0,
              unreserved = 0, finished = 0 }
  local first, last = math.huge, 0
  for _, thread in ipairs(threads) do
    t.tokens = t.tokens + thread:get("slice_len")
    for _, k in ipairs({ "sent", "answered", "ok200", "other2xx", "non2xx", "unreserved", "finished" }) do
      t[k] = t[k] + thread:get(k)
    end
    local f, l = thread:get("first_us"), thread:get("last_us")
    if f > 0 and f < first then first = f end
    if l > last then last = l end
  end
  local window = 0
  if first < math.huge and last > first then window = (last - first) / 1e6 end
  local rps = 0
  if window > 0 then rps = t.answered / window end
  local e = summary.errors
  io.write(string.format(
    'COLD {"tokens": %d, "sent": %d, "answered": %d, "ok200": %d, "other2xx": %d, "non2xx": %d, ' ..
    '"unreserved": %d, "threads": %d, "threads_finished": %d, "window_s": %.6f, "rps": %.1f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "wrk_requests": %d, "wrk_secs": %.3f, ' ..
    '"sock_connect": %d, "sock_read": %d, "sock_write": %d, "sock_timeout": %d, "wrk_status_errors": %d}\n',
    t.tokens, t.sent, t.answered, t.ok200, t.other2xx, t.non2xx, t.unreserved, #threads, t.finished,
    window, rps, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, summary.duration / 1e6,
    e.connect, e.read, e.write, e.timeout, e.status))
end
