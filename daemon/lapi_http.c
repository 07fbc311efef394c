/* http_post and http_request: a request suspends the calling coroutine
 * until its last attempt ends. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "config.h"
#include "http.h"
#include "json.h"
#include "lapi.h"
#include "rule.h"

static bool
header_text_ok(const char *s, size_t len)
{
	return memchr(s, '\r', len) == NULL && memchr(s, '\n', len) == NULL &&
	    strlen(s) == len;
}

/* First pass: every name and value a string (or number) without CR,
 * LF or NUL; refused before anything is allocated. Returns whether a
 * Content-Type was given. */
static bool
check_headers(lua_State *L, int t, const char *fname)
{
	bool has_type = false;
	const char *name;
	size_t len;

	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    (lua_type(L, -1) != LUA_TSTRING &&
		    lua_type(L, -1) != LUA_TNUMBER))
			luaL_error(L, "%s: header names and values must be "
			    "strings", fname);
		name = lua_tolstring(L, -2, &len);
		if (!header_text_ok(name, len) || len == 0 ||
		    strchr(name, ':') != NULL)
			luaL_error(L, "%s: header name '%s' is not valid",
			    fname, name);
		lua_tolstring(L, -1, &len);
		if (!header_text_ok(lua_tostring(L, -1), len))
			luaL_error(L, "%s: value of header %s holds CR, LF or "
			    "NUL", fname, name);
		has_type |= strcasecmp(name, "content-type") == 0;
		lua_pop(L, 1);
	}
	return has_type;
}

static struct curl_slist *
append_header(struct curl_slist *list, const char *name, const char *value,
    bool *failed)
{
	char line[8192];
	struct curl_slist *grown;

	snprintf(line, sizeof(line), "%s: %s", name, value);
	if ((grown = curl_slist_append(list, line)) == NULL)
		*failed = true;
	return grown != NULL ? grown : list;
}

static struct curl_slist *
build_headers(lua_State *L, int t, bool json_body, const char *fname)
{
	struct curl_slist *list = NULL;
	bool has_type = false, failed = false;

	if (t != 0)
		has_type = check_headers(L, t, fname);
	if (json_body && !has_type)
		list = append_header(list, "Content-Type", "application/json",
		    &failed);
	if (t != 0) {
		lua_pushnil(L);
		while (lua_next(L, t) != 0) {
			list = append_header(list, lua_tostring(L, -2),
			    lua_tostring(L, -1), &failed);
			lua_pop(L, 1);
		}
	}
	if (failed) {
		curl_slist_free_all(list);
		luaL_error(L, "%s: out of memory", fname);
	}
	return list;
}

static long
opt_number(lua_State *L, int opts, const char *name, long fallback)
{
	lua_Integer v = fallback;

	if (opts != 0 && lua_getfield(L, opts, name) != LUA_TNIL) {
		v = luaL_checkinteger(L, -1);
		luaL_argcheck(L, v >= 0, opts, "timeout and retries must not "
		    "be negative");
	}
	if (opts != 0)
		lua_pop(L, 1);
	return (long)v;
}

static int
push_result(lua_State *L, void *arg)
{
	const struct http_result *res = arg;

	lua_createtable(L, 0, 4);
	lua_pushboolean(L, res->error == NULL && res->status >= 200 &&
	    res->status < 300);
	lua_setfield(L, -2, "ok");
	lua_pushinteger(L, res->status);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, res->body, res->body_len);
	lua_setfield(L, -2, "body");
	if (res->error != NULL) {
		lua_pushstring(L, res->error);
		lua_setfield(L, -2, "error");
	}
	return 1;
}

static void
on_done(void *ctx, const struct http_result *res)
{
	rule_resume(ctx, push_result, (void *)res);
}

/* Puts the body to send at idx as a string; a non-string is encoded as
 * JSON. Returns whether it was encoded. */
static bool
prepare_body(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx) || lua_type(L, idx) == LUA_TSTRING)
		return false;
	json_encode_push(L, idx);
	lua_replace(L, idx);
	return true;
}

static int
start_request(lua_State *L, const char *fname, const char *method, int at)
{
	struct rule *r = lapi_rule(L);
	struct invocation *inv = rule_current(L);
	struct http_spec s = { .method = method };
	int opts = lua_isnoneornil(L, at + 2) ? 0 : at + 2;
	bool json_body;
	char err[256];

	if (inv == NULL || !lua_isyieldable(L))
		return luaL_error(L, "%s: call it from a handler or a timer "
		    "callback, not at load or in a coroutine of the rule's "
		    "own", fname);
	s.url = luaL_checkstring(L, at);
	if (opts != 0)
		luaL_checktype(L, opts, LUA_TTABLE);
	json_body = prepare_body(L, at + 1);
	if (!lua_isnoneornil(L, at + 1))
		s.body = lua_tolstring(L, at + 1, &s.body_len);
	s.timeout = opt_number(L, opts, "timeout", r->config->http_timeout);
	s.retries = opt_number(L, opts, "retries", r->config->http_retries);
	if (opts != 0 && lua_getfield(L, opts, "headers") != LUA_TNIL)
		luaL_checktype(L, -1, LUA_TTABLE);
	s.headers = build_headers(L, opts != 0 && lua_istable(L, -1) ?
	    lua_gettop(L) : 0, json_body, fname);
	s.origin = (struct log_origin){ .rule = r->name,
	    .topic = inv->topic };
	if (http_start(&s, on_done, inv, err, sizeof(err)) == -1)
		return luaL_error(L, "%s: %s", fname, err);
	inv->waiting = true;
	return lua_yield(L, 0);
}

static int
l_http_post(lua_State *L)
{
	return start_request(L, "http_post", "POST", 1);
}

static int
l_http_request(lua_State *L)
{
	const char *method = luaL_checkstring(L, 1);

	for (const char *p = method; *p != '\0'; p++)
		if (!isupper((unsigned char)*p))
			return luaL_error(L, "http_request: method '%s' must "
			    "be upper-case letters", method);
	return start_request(L, "http_request", method, 2);
}

void
lapi_http_open(lua_State *L, struct rule *r)
{
	lua_pushlightuserdata(L, r);
	lua_pushcclosure(L, l_http_post, 1);
	lua_setglobal(L, "http_post");
	lua_pushlightuserdata(L, r);
	lua_pushcclosure(L, l_http_request, 1);
	lua_setglobal(L, "http_request");
}
