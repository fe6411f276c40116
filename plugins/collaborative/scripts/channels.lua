-- Channel rules: what the SMS, phone and social channels (channels.c) should make happen.
--
--   rules.missed_call   a missed call (or a voicemail) from a known contact gives its owner a
--                       task to call back, due rules.missed_call.due later ("4h"); one open
--                       call-back task per contact, however often they try.
--   rules.low_rating    a review rated rules.low_rating.max (2) or lower opens a high-priority
--                       ticket for the contact; one per review.
--
-- Switch one off with `rapport config set rules.missed_call.enabled false` (or low_rating).
-- Handlers see an event at least once: each checks before it creates, so a repeat adds nothing.

local function enabled(rule)
  return crm.config("rules." .. rule .. ".enabled", true) ~= false
end

-- "Ada Lovelace", or the number when the contact has no name worth saying.
local function name_of(c, number)
  local parts = {}
  if c.first_name and c.first_name ~= "" then parts[#parts + 1] = c.first_name end
  if c.last_name and c.last_name ~= "" then parts[#parts + 1] = c.last_name end
  if #parts == 0 then return number or ("contact " .. c.id) end
  return table.concat(parts, " ")
end

crm.on("interaction.created", function(ev)
  if not enabled("missed_call") then return end
  local i = crm.get("interaction", ev.id)
  if not i or i.channel ~= "phone" or i.status ~= "missed" or not i.contact then return end
  local c = crm.get("contact", i.contact)
  if not c or c.deleted_at then return end
  local subject = "Call back " .. name_of(c, i.from_addr)
  -- One open call-back task per contact: a second missed call adds nothing to do.
  if crm.count("activity", {kind = "task", related_entity = "contact", related_id = c.id,
                            subject = subject, done = false}) > 0 then
    return
  end
  crm.create("activity", {
    kind = "task", subject = subject, owner = c.owner,
    related_entity = "contact", related_id = c.id,
    description = "Missed call from " .. (i.from_addr or "an unknown number") .. " at " .. i.at
                  .. (i.recording and (" (voicemail: " .. i.recording .. ")") or ""),
    due_at = crm.time(crm.now_ms() + crm.delay_ms(crm.config("rules.missed_call.due", "4h")))})
end, {name = "rules.missed_call"})

crm.on("interaction.created", function(ev)
  if not enabled("low_rating") then return end
  local i = crm.get("interaction", ev.id)
  if not i or i.channel ~= "social" or not i.rating then return end
  if i.rating > crm.config("rules.low_rating.max", 2) then return end
  -- channels.c keeps the platform where the review was said (to_addr).
  local platform = i.to_addr or "social media"
  local subject = "Low rating (" .. i.rating .. "/5) on " .. platform
  local text = (i.body and i.body ~= "") and i.body or "(a rating without words)"
  local ticket = {subject = subject, priority = "high", description = text, contact = i.contact}
  -- One ticket per review: the same words, rating and author are the same review seen again.
  local same = {subject = subject, description = text}
  same.contact = i.contact or {is_null = true}
  if crm.count("ticket", same) > 0 then return end
  if i.contact then
    local c = crm.get("contact", i.contact)
    ticket.account = c and c.account or nil
  end
  crm.create("ticket", ticket)
end, {name = "rules.low_rating"})
