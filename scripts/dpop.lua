-- wrk script for the load harness's DPoP variants: every request carries
-- the same bound access token and a proof used only this once, read from
-- the file `bench_server dpop-proofs` wrote (first line: the
-- Authorization value; then one proof a line). Run with one wrk thread.
local auth
local proofs = {}
local next_proof = 0

function init(args)
  local f = assert(io.open(args[1], "r"))
  auth = f:read("*l")
  for line in f:lines() do
    proofs[#proofs + 1] = line
  end
  f:close()
end

function request()
  next_proof = next_proof + 1
  -- Out of proofs: a reused one is refused (401) and the harness stops.
  local proof = proofs[next_proof] or proofs[1]
  return wrk.format("GET", "/", { ["Authorization"] = auth, ["DPoP"] = proof })
end
