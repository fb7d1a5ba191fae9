-- wrk script: /api/private with many distinct users' tokens, round-robin.
-- Usage: wrk ... -s benches/wrk/tokens.lua URL -- TOKENS_FILE [THREADS]
-- TOKENS_FILE holds one token per line (`actix-auth0-api token --count N`).
-- Each request carries the next token; thread i starts at offset i*N/THREADS
-- so the threads do not send the same token at the same moment. The requests
-- are formatted once, in init(): wrk.format() per request would cost the
-- load generator more than the server spends on a cached token.
-- The done() hook (one machine-readable WRK line) comes from report.lua
-- in the same folder.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local thread_count = 0
function setup(thread)           -- main state, once per thread
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local requests, n, idx = {}, 0, 0
function init(args)              -- each thread's own state
  local path = args[1] or error("tokens.lua: pass the token file after --")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then
      n = n + 1
      wrk.headers["Authorization"] = "Bearer " .. line
      requests[n] = wrk.format()
    end
  end
  f:close()
  assert(n > 0, "tokens.lua: no tokens in " .. path)
  local threads = tonumber(args[2] or "1")
  idx = (math.floor(n / threads) * (tid or 0)) % n
end

function request()
  idx = idx % n + 1
  return requests[idx]
end
