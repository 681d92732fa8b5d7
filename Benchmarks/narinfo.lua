-- wrk script: GET every narinfo of a closure in turn. env: HASHES_FILE (one hash part a line),
-- URL_PREFIX (path before "<hash>.narinfo"), BEARER (optional token).
local urls = {}
local prefix = os.getenv("URL_PREFIX") or "/"
for line in io.lines(os.getenv("HASHES_FILE")) do
  urls[#urls + 1] = prefix .. line .. ".narinfo"
end
local token = os.getenv("BEARER")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local i = 0
function init(args)
  i = math.random(#urls)
end
function request()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
