-- wrk script: GET every narinfo of a closure in turn. env: HASHES_FILE (one hash part a line),
-- URL_PREFIX (path before "<hash>.narinfo"), BEARER (optional token). Requests are formatted
-- once, so wrk spends as little CPU as possible per request (it shares the cores with the server).
local requests = {}
local prefix = os.getenv("URL_PREFIX") or "/"
local token = os.getenv("BEARER")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local i = 0
function init(args)
  -- wrk.format adds the Host header only once the thread knows its target, i.e. from here on.
  for line in io.lines(os.getenv("HASHES_FILE")) do
    requests[#requests + 1] = wrk.format("GET", prefix .. line .. ".narinfo")
  end
  i = math.random(#requests)
end
function request()
  i = i % #requests + 1
  return requests[i]
end
