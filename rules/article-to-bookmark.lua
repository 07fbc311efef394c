-- article-to-bookmark: files each published Kompose article as a link in
-- Linkwarden, in one named collection, once per article URL.
--
-- Settings, read from the environment when the rule loads:
--   LINKWARDEN_URL         required. Base URL of the Linkwarden server,
--                          e.g. https://links.example.com (a trailing /
--                          is ignored).
--   LINKWARDEN_API_TOKEN   required. An access token (Linkwarden:
--                          Settings, Access Tokens), sent as a Bearer
--                          token. It is never logged.
--   LINKWARDEN_COLLECTION  default "Published Articles". Name of the
--                          collection the links are filed into; created
--                          on first use when the user has none by that
--                          name.

local BASE = env("LINKWARDEN_URL"):gsub("/+$", "")
local TOKEN = env("LINKWARDEN_API_TOKEN")
local COLLECTION = env("LINKWARDEN_COLLECTION", "Published Articles")

local HEADERS = {Authorization = "Bearer " .. TOKEN}

-- Linkwarden refuses longer fields with a 400, losing the whole link.
local MAX_TEXT = 2048
local MAX_TAG = 50

-- Linkwarden stores duplicates silently, so redeliveries are caught here;
-- a month covers any broker or publisher retry we know of.
local DEDUPE_WINDOW = 30 * 24 * 3600

-- The collection id once known, and the events waiting for it while one
-- lookup is in flight (nil when none is).
local collection_id
local waiting

-- Cuts s to at most max UTF-16 units, which is how Linkwarden (JavaScript)
-- measures length, without splitting a UTF-8 sequence.
local function clip(s, max)
  if #s <= max then
    return s
  end
  if not utf8.len(s) then
    return s:sub(1, max)
  end
  local units = 0
  for pos, code in utf8.codes(s) do
    units = units + (code > 0xFFFF and 2 or 1)
    if units > max then
      return s:sub(1, pos - 1)
    end
  end
  return s
end

local function text_field(value)
  if type(value) == "string" and value ~= "" then
    return clip(value, MAX_TEXT)
  end
  return nil
end

-- An empty Lua table would encode as an object, so no tags gives nil.
local function tag_list(tags)
  if type(tags) ~= "table" then
    return nil
  end
  local list = {}
  for _, tag in ipairs(tags) do
    if type(tag) == "string" and tag ~= "" then
      list[#list + 1] = {name = clip(tag, MAX_TAG)}
    end
  end
  if #list == 0 then
    return nil
  end
  return list
end

local function decode_response(res)
  local doc = json.decode(res.body or "")
  if type(doc) ~= "table" then
    return nil
  end
  return doc.response
end

local function failure(what, res)
  return string.format("%s failed: status %d%s", what, res.status,
    res.error and (", " .. res.error) or "")
end

-- Returns the id of the collection named COLLECTION, false when the user
-- has none, or nil and a message.
local function find_collection()
  local res = http_request("GET", BASE .. "/api/v1/collections", nil,
    {headers = HEADERS})
  if not res.ok then
    return nil, failure("GET /api/v1/collections", res)
  end
  local list = decode_response(res)
  if type(list) ~= "table" then
    return nil, "GET /api/v1/collections: response holds no list"
  end
  for _, c in ipairs(list) do
    if type(c) == "table" and c.name == COLLECTION
        and type(c.id) == "number" then
      return c.id
    end
  end
  return false
end

local function create_collection()
  local res = http_post(BASE .. "/api/v1/collections",
    {name = COLLECTION}, {headers = HEADERS})
  if not res.ok then
    return nil, failure("POST /api/v1/collections", res)
  end
  local c = decode_response(res)
  if type(c) ~= "table" or type(c.id) ~= "number" then
    return nil, "POST /api/v1/collections: response holds no id"
  end
  log.info("created collection \"%s\" (id %d)", COLLECTION, c.id)
  return c.id
end

-- Never raises, so that waiting is always released by the caller.
local function lookup_collection()
  local id, err = find_collection()
  if id == false then
    id, err = create_collection()
  end
  return id, err
end

-- Calls fn(id) once the collection id is known. Only one lookup runs at a
-- time; events arriving meanwhile are parked and restarted, each in its
-- own coroutine, when it ends. After a failed lookup the next event tries
-- again.
local function with_collection(fn)
  if collection_id then
    return fn(collection_id)
  end
  if waiting then
    waiting[#waiting + 1] = function() with_collection(fn) end
    return
  end

  waiting = {}
  local id, err = lookup_collection()
  local parked = waiting
  waiting = nil
  collection_id = id
  for _, resume in ipairs(parked) do
    timer.after(0, resume)
  end

  if not id then
    error("collection \"" .. COLLECTION .. "\": " .. err, 0)
  end
  return fn(id)
end

local function link_body(data, id)
  return {
    url = data.published_url,
    name = text_field(data.title),
    description = text_field(data.excerpt),
    tags = tag_list(data.tags),
    collection = {id = id},
  }
end

local function post_link(data, id)
  local url = data.published_url
  local key = "article-to-bookmark:" .. url
  if counter.incr(key, 1, DEDUPE_WINDOW) > 1 then
    log.info("already bookmarked %s", url)
    return
  end

  local res = http_post(BASE .. "/api/v1/links", link_body(data, id),
    {headers = HEADERS})
  if not res.ok then
    -- Forget the article so that a redelivery tries again.
    counter.reset(key)
    error(failure("POST /api/v1/links for " .. url, res), 0)
  end
  log.info("bookmarked %s: status %d", url, res.status)
end

local function payload_kind(event)
  if event == nil then
    return "payload is not JSON"
  elseif event == json.null then
    return "payload is JSON null, not an object"
  end
  return "payload is a JSON " .. type(event) .. ", not an object"
end

-- Returns the event's data table, or nil and what is missing.
local function article_data(event)
  if type(event) ~= "table" then
    return nil, payload_kind(event)
  end
  local data = event.data
  if type(data) ~= "table" then
    return nil, "event has no data object"
  end
  local url = data.published_url
  if type(url) ~= "string" or url == "" then
    return nil, "event has no data.published_url"
  end
  return data
end

on("kompose/news/article/published", function(event)
  local data, missing = article_data(event)
  if not data then
    log.warn("skipped article: %s", missing)
    return
  end
  with_collection(function(id) post_link(data, id) end)
end)
