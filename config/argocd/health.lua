-- Argo CD health check for chatgateway.dev resources (ChatGateway, ModelProvider,
-- UserAllowlist). It reads their status as kstatus does (what Flux's health checks
-- compute): an unobserved generation or Reconciling=True is Progressing,
-- Stalled=True is Degraded, and only Ready=True for the current generation is Healthy.
local hs = {status = "Progressing", message = "Waiting for the operator to report status"}
if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed ~= generation then
  hs.message = "The operator has not yet observed generation " .. tostring(generation)
  return hs
end
local ready = nil
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Reconciling" and c.status == "True" then
    hs.message = c.message or c.reason or "Reconciling"
    return hs
  end
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = c.message or c.reason or "Stalled"
    return hs
  end
  if c.type == "Ready" then
    ready = c
  end
end
if ready == nil then
  return hs
end
hs.message = ready.message or ready.reason or ""
if ready.status == "True" and (ready.observedGeneration == nil or ready.observedGeneration == generation) then
  hs.status = "Healthy"
end
return hs
