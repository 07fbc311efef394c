/* The core of the rule API: on, env, log, now, publish, emit, and the
 * registration of every library in a rule's state. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "clock.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "rule.h"
#include "topic.h"

static lapi_publish_fn	*publisher;

/* Whether s[0..len) is well-formed UTF-8 (no overlong forms or
 * surrogates), as MQTT requires of topic names. */
static bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		int n = *p < 0x80 ? 0 : *p >= 0xc2 && *p < 0xe0 ? 1 :
		    *p >= 0xe0 && *p < 0xf0 ? 2 : *p >= 0xf0 && *p < 0xf5 ?
		    3 : -1;
		unsigned long cp;

		if (n < 0 || end - p <= n)
			return n == 0;
		cp = n == 0 ? *p : *p & (0x3f >> n);
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)))
		    || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += n + 1;
	}
	return true;
}

void
lapi_set_publisher(lapi_publish_fn *fn)
{
	publisher = fn;
}

struct rule *
lapi_rule(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

static int
read_qos(lua_State *L, int opts, int fallback)
{
	lua_Integer qos;

	if (lua_getfield(L, opts, "qos") == LUA_TNIL) {
		lua_pop(L, 1);
		return fallback;
	}
	qos = luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	luaL_argcheck(L, qos >= 0 && qos <= 2, opts, "qos must be 0, 1 or 2");
	return (int)qos;
}

static bool
read_flag(lua_State *L, int opts, const char *name)
{
	bool on = lua_getfield(L, opts, name) != LUA_TNIL &&
	    lua_toboolean(L, -1);

	lua_pop(L, 1);
	return on;
}

static int
l_on(lua_State *L)
{
	struct rule *r = lapi_rule(L);
	const char *filter = luaL_checkstring(L, 1);
	struct handler *h;
	int qos = r->default_qos;
	bool retained = false;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		qos = read_qos(L, 3, qos);
		retained = read_flag(L, 3, "retained");
	}
	if (!r->loading)
		return luaL_error(L, "on: handlers are registered while the "
		    "rule loads, not later");
	if (!topic_filter_valid(filter))
		return luaL_error(L, "on: '%s' is not a valid topic filter",
		    filter);
	h = realloc(r->handlers, (r->nhandlers + 1) * sizeof(*h));
	if (h == NULL)
		return luaL_error(L, "on: out of memory");
	r->handlers = h;
	h = &h[r->nhandlers];
	if ((h->filter = strdup(filter)) == NULL)
		return luaL_error(L, "on: out of memory");
	h->qos = qos;
	h->retained = retained;
	lua_pushvalue(L, 2);
	h->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	r->nhandlers++;
	return 0;
}

/* Remembers which variables a rule reads so that `check` can list
 * them; a name is kept once. */
static void
note_env(struct rule *r, const char *name, int state)
{
	struct rule_env *grown;

	for (size_t i = 0; i < r->nenv; i++)
		if (strcmp(r->env[i].name, name) == 0)
			return;
	if ((grown = realloc(r->env, (r->nenv + 1) * sizeof(*grown))) == NULL)
		return;
	r->env = grown;
	if ((grown[r->nenv].name = strdup(name)) != NULL)
		grown[r->nenv++].state = state;
}

/* The error names the variable, never a value. */
static int
l_env(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *value = getenv(name);

	note_env(lapi_rule(L), name, value != NULL ? RULE_ENV_SET :
	    RULE_ENV_DEFAULT);
	if (value != NULL)
		lua_pushstring(L, value);
	else if (!lua_isnoneornil(L, 2))
		lua_pushstring(L, luaL_checkstring(L, 2));
	else
		return luaL_error(L, "env: %s is not set", name);
	return 1;
}

static int
l_now(lua_State *L)
{
	lua_pushnumber(L, clock_now());
	return 1;
}

/* Upvalues: the rule, the level, and string.format as it was when the
 * rule loaded, so a rule that replaces it cannot break logging. */
static int
l_log(lua_State *L)
{
	struct rule *r = lapi_rule(L);
	struct invocation *inv = rule_active(L);
	enum log_level level = (enum log_level)lua_tointeger(L,
	    lua_upvalueindex(2));
	struct log_origin o = { .rule = r->name,
	    .topic = inv != NULL ? inv->topic : NULL };

	if (!log_enabled(level))
		return 0;
	lua_pushvalue(L, lua_upvalueindex(3));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	if (rule_observer() != NULL)
		rule_observer()->log(r, o.topic, level, lua_tostring(L, -1));
	else
		log_at(level, &o, "%s", lua_tostring(L, -1));
	return 0;
}

/* A table payload (or any non-string) goes out as JSON. */
static const char *
payload_of(lua_State *L, int idx, size_t *len)
{
	if (lua_type(L, idx) == LUA_TSTRING)
		return lua_tolstring(L, idx, len);
	luaL_argcheck(L, !lua_isnoneornil(L, idx), idx, "payload expected");
	json_encode_push(L, idx);
	lua_replace(L, idx);
	return lua_tolstring(L, idx, len);
}

/* MQTT topic names: 1 to 65535 bytes of UTF-8, no NUL, no wildcard. */
static void
check_topic(lua_State *L, int idx)
{
	size_t len;
	const char *topic = luaL_checklstring(L, idx, &len);

	if (len == 0 || len > 65535 || strlen(topic) != len ||
	    strpbrk(topic, "+#") != NULL || !utf8_valid(topic, len))
		luaL_error(L, "not a topic to publish to: it must be 1 to "
		    "65535 bytes of UTF-8 without NUL, + or #");
}

static int
publish_checked(lua_State *L, const char *topic, const char *payload,
    size_t len, int opts)
{
	struct rule *r = lapi_rule(L);
	int qos = 1, retain = 0;

	if (!lua_isnoneornil(L, opts)) {
		luaL_checktype(L, opts, LUA_TTABLE);
		qos = read_qos(L, opts, 1);
		retain = read_flag(L, opts, "retain");
	}
	if (publisher(r->name, topic, payload, len, qos, retain) == -1) {
		log_at(LOG_WARN, &(struct log_origin){ .rule = r->name,
		    .topic = topic }, "publish failed");
		lua_pushboolean(L, 0);
	} else
		lua_pushboolean(L, 1);
	return 1;
}

static int
l_publish(lua_State *L)
{
	const char *topic = (check_topic(L, 1), lua_tostring(L, 1));
	size_t len;
	const char *payload = payload_of(L, 2, &len);

	return publish_checked(L, topic, payload, len, 3);
}

/* "kompose/system/alert/triggered" names the event "alert.triggered". */
static void
push_event_name(lua_State *L, const char *topic)
{
	const char *p = strchr(topic, '/');

	if (p == NULL || (p = strchr(p + 1, '/')) == NULL || p[1] == '\0')
		luaL_error(L, "emit: topic '%s' has no levels to name the "
		    "event after; pass opts.event", topic);
	lua_pushstring(L, p + 1);
	luaL_gsub(L, lua_tostring(L, -1), "/", ".");
	lua_remove(L, -2);
}

static void
push_timestamp(lua_State *L)
{
	time_t t = (time_t)clock_now();
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	lua_pushstring(L, buf);
}

/* Writes the envelope by hand so that its keys keep the order of the
 * Kompose guide: event, timestamp, data. */
static int
l_emit(lua_State *L)
{
	const char *topic = (check_topic(L, 1), lua_tostring(L, 1)), *envelope;
	size_t len;

	luaL_checkany(L, 2);
	lua_settop(L, 3);
	if (!lua_isnil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	if (lua_isnil(L, 3) || lua_getfield(L, 3, "event") == LUA_TNIL) {
		lua_settop(L, 3);
		push_event_name(L, topic);
	} else
		luaL_argcheck(L, lua_type(L, 4) == LUA_TSTRING, 3,
		    "opts.event must be a string");
	lua_pushliteral(L, "{\"event\":");
	json_encode_push(L, 4);
	lua_pushliteral(L, ",\"timestamp\":");
	push_timestamp(L);
	json_encode_push(L, -1);
	lua_remove(L, -2);
	lua_pushliteral(L, ",\"data\":");
	json_encode_push(L, 2);
	lua_pushliteral(L, "}");
	lua_concat(L, 7);
	envelope = lua_tolstring(L, 5, &len);
	return publish_checked(L, topic, envelope, len, 3);
}

static void
set_function(lua_State *L, struct rule *r, const char *name,
    lua_CFunction fn)
{
	lua_pushlightuserdata(L, r);
	lua_pushcclosure(L, fn, 1);
	lua_setglobal(L, name);
}

static void
open_log(lua_State *L, struct rule *r)
{
	static const char *const names[] = { "debug", "info", "warn",
	    "error" };

	lua_createtable(L, 0, 4);
	for (int i = 0; i < 4; i++) {
		lua_pushlightuserdata(L, r);
		lua_pushinteger(L, i);
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "format");
		lua_remove(L, -2);
		lua_pushcclosure(L, l_log, 3);
		lua_setfield(L, -2, names[i]);
	}
	lua_setglobal(L, "log");
}

void
lapi_open(lua_State *L, struct rule *r)
{
	set_function(L, r, "on", l_on);
	set_function(L, r, "env", l_env);
	set_function(L, r, "now", l_now);
	set_function(L, r, "publish", l_publish);
	set_function(L, r, "emit", l_emit);
	open_log(L, r);
	json_open(L);
	lua_setglobal(L, "json");
	lapi_counter_push(L, r->counters);
	lua_setglobal(L, "counter");
	lapi_timer_push(L, r);
	lua_setglobal(L, "timer");
	lapi_http_open(L, r);
}
