-- One request shape per measured endpoint, with a fresh token per request where the flow
-- needs one. bench/load.py writes the spec and token files and reads the JSON line that
-- done() prints.
--
--   wrk ... -s request.lua URL -- SPEC [MODE FILE [NTHREADS | COUNT OUT]]
--
-- SPEC: line 1 the method, line 2 the path, line 3 the body (may be empty), then one
-- "Name: value" header a line; "{token}" anywhere is replaced by a token from FILE.
-- MODE:
--   static   the same request every time (no FILE)
--   cycle    reusable tokens (access tokens), taken in turn
--   once     single-use tokens (authorization codes): each is sent once; when a thread runs
--            out, the run ends (bounded by count) and the rate is counted up to that moment
--   chain    rotating refresh tokens: FILE seeds them; every 2xx answer's refresh_token
--            goes back into the pool, so each request presents a live one
--   collect  mint authorization codes: an authorization request sent with each signed-in
--            session's cookies of FILE in turn; the code of each redirect is appended to OUT
--            until COUNT codes are collected (one thread)
-- Errors: every answer that is not 2xx (3xx included; in collect mode, every answer without
-- a code), plus wrk's socket errors and timeouts.

local ffi = require("ffi")
ffi.cdef [[
int kill(int pid, int sig);
int getpid(void);
]]
local SIGINT = 2

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local spec, mode, pool, out_path, target
local next_index, collected, finished = 1, 0, false
-- Globals, so that done() can read each thread's counts with thread:get.
errors = 0
statuses = {} -- status code (0: no code in a collect answer) -> count, for the non-2xx

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then
      table.insert(lines, line)
    end
  end
  return lines
end

local function substitute(text, token)
  local s, e = string.find(text, "{token}", 1, true)
  if not s then
    return text
  end
  return string.sub(text, 1, s - 1) .. token .. string.sub(text, e + 1)
end

local function format(token)
  local headers = {}
  for name, value in pairs(spec.headers) do
    headers[name] = substitute(value, token)
  end
  local body = spec.body ~= "" and substitute(spec.body, token) or nil
  return wrk.format(spec.method, substitute(spec.path, token), headers, body)
end

-- End the whole run now: wrk's main thread sleeps for -d, a SIGINT wakes it and it
-- reports the requests completed so far over the time actually elapsed.
local function finish()
  if not finished then
    finished = true
    ffi.C.kill(ffi.C.getpid(), SIGINT)
    wrk.thread:stop()
  end
  return wrk.format("GET", "/bench-run-ended")
end

function init(args)
  local lines = read_lines(args[1])
  spec = { method = lines[1], path = lines[2], body = lines[3] == "-" and "" or lines[3], headers = {} }
  for i = 4, #lines do
    local name, value = string.match(lines[i], "^([^:]+):%s*(.*)$")
    spec.headers[name] = value
  end
  mode = args[2] or "static"
  if mode == "collect" then
    pool, target, out_path = read_lines(args[3]), tonumber(args[4]), args[5]
    os.remove(out_path)
  elseif mode ~= "static" then
    -- Each of the NTHREADS threads takes every NTHREADS-th token: no token is sent twice.
    local all, mine = read_lines(args[3]), {}
    local id, nthreads = wrk.thread:get("id"), tonumber(args[4] or "1")
    for i = id + 1, #all, nthreads do
      table.insert(mine, all[i])
    end
    pool = mine
    if mode == "once" then
      for i, token in ipairs(pool) do
        pool[i] = format(token)
      end
    end
  else
    pool = { format("") }
  end
end

function request()
  if mode == "static" then
    return pool[1]
  elseif mode == "cycle" or mode == "collect" then
    local token = pool[next_index]
    next_index = next_index % #pool + 1
    return format(token)
  elseif mode == "once" then
    local req = pool[next_index]
    if req == nil then
      return finish()
    end
    next_index = next_index + 1
    return req
  else -- chain
    local token = table.remove(pool)
    if token == nil then
      return finish()
    end
    return format(token)
  end
end

function response(status, headers, body)
  if mode == "collect" then
    local location = headers["Location"] or headers["location"] or ""
    local code = string.match(location, "[?&]code=([^&]+)")
    if code then
      local fh = io.open(out_path, "a")
      fh:write(code, "\n")
      fh:close()
      collected = collected + 1
      if collected >= target then
        finish()
      end
    else
      errors = errors + 1
      statuses[status] = (statuses[status] or 0) + 1
    end
    return
  end
  if status < 200 or status > 299 then
    errors = errors + 1
    statuses[status] = (statuses[status] or 0) + 1
  elseif mode == "chain" then
    local token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      table.insert(pool, 1, token)
    end
  end
end

function done(summary, latency, requests)
  local non2xx, by_status = 0, {}
  for _, thread in ipairs(threads) do
    non2xx = non2xx + (thread:get("errors") or 0)
    for status, n in pairs(thread:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(by_status) do
    table.insert(parts, string.format("%d:%d", status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "statuses": "%s"}\n',
    summary.requests, summary.duration, non2xx, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, table.concat(parts, " ")
  ))
end
