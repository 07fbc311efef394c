/* timer.every, timer.after and timer.cron: callbacks on the daemon's
 * clock, each run in its own coroutine. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "clock.h"
#include "cron.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "path.h"
#include "rule.h"
#include "timer.h"

#define HANDLE_META	"mqttrules.timer"

enum ltimer_kind { LTIMER_ONCE, LTIMER_EVERY, LTIMER_CRON };

/* Lives as the handle's userdata; anchored in the registry while it is
 * scheduled, so a rule need not keep the handle. */
struct ltimer {
	struct rule		*rule;
	int			 fn_ref;
	int			 self_ref;	/* LUA_NOREF: not scheduled */
	enum ltimer_kind	 kind;
	double			 when;
	double			 interval;	/* LTIMER_EVERY */
	struct cron_spec	 cron;		/* LTIMER_CRON */
	uint64_t		 id;
	char			*key;		/* kept across restarts */
	char			*data;		/* JSON text, or NULL */
	struct ltimer		*kprev, *knext;	/* in keyed, while set */
	bool			 linked;
};

/* Pending timers with a key, saved so that a restart brings them back
 * (to the rule's timer.restore function). */
static struct ltimer	*keyed;
static bool		 keyed_dirty;

static void
keyed_link(struct ltimer *t)
{
	t->kprev = NULL;
	t->knext = keyed;
	if (keyed != NULL)
		keyed->kprev = t;
	keyed = t;
	t->linked = true;
	keyed_dirty = true;
}

static void
keyed_unlink(struct ltimer *t)
{
	if (!t->linked)
		return;
	if (t->kprev != NULL)
		t->kprev->knext = t->knext;
	else
		keyed = t->knext;
	if (t->knext != NULL)
		t->knext->kprev = t->kprev;
	t->linked = false;
	keyed_dirty = true;
}

/* A keyed timer's callback gets its key and data. */
static int
push_key_data(lua_State *L, void *arg)
{
	struct ltimer *t = arg;

	lua_pushstring(L, t->key);
	if (t->data == NULL || !json_decode_push(L, t->data,
	    strlen(t->data)))
		lua_pushnil(L);
	return 2;
}

static int
push_nothing(lua_State *L, void *arg)
{
	(void)L;
	(void)arg;
	return 0;
}

static void
unschedule(struct ltimer *t)
{
	keyed_unlink(t);
	if (t->id != 0)
		timer_cancel(t->id);
	t->id = 0;
	luaL_unref(t->rule->L, LUA_REGISTRYINDEX, t->self_ref);
	t->self_ref = LUA_NOREF;
}

/* The deadline after the run due at t->when; false when there is none.
 * Keeps to the original grid, skipping ticks missed while busy. */
static bool
next_when(const struct ltimer *t, double now, double *next)
{
	switch (t->kind) {
	case LTIMER_EVERY:
		*next = t->when + t->interval;
		if (*next <= now)
			*next = now + t->interval;
		return true;
	case LTIMER_CRON:
		*next = cron_next(&t->cron, t->when);
		if (*next != -1 && *next <= now)
			*next = cron_next(&t->cron, now);
		return *next != -1;
	case LTIMER_ONCE:
		break;
	}
	return false;
}

static void
on_due(void *ctx)
{
	struct ltimer *t = ctx;
	lua_State *L = t->rule->L;

	t->id = 0;
	if (t->rule->retired) {
		unschedule(t);
		return;
	}
	if (next_when(t, clock_now(), &t->when))
		t->id = timer_add(t->when, on_due, t, t->rule);
	/* The callback may cancel and drop the last handle: keep the
	 * userdata alive until this function is done with it. */
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
	if (t->key != NULL)
		rule_start(t->rule, t->fn_ref, NULL, push_key_data, t, NULL);
	else
		rule_start(t->rule, t->fn_ref, NULL, push_nothing, NULL, NULL);
	if (t->id == 0)
		unschedule(t);
	lua_pop(L, 1);
}

static int
l_cancel(lua_State *L)
{
	struct ltimer *t = luaL_checkudata(L, 1, HANDLE_META);

	unschedule(t);
	return 0;
}

static int
l_gc(lua_State *L)
{
	struct ltimer *t = luaL_checkudata(L, 1, HANDLE_META);

	keyed_unlink(t);
	luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
	t->fn_ref = LUA_NOREF;
	free(t->key);
	free(t->data);
	t->key = t->data = NULL;
	return 0;
}

/* Pushes a handle for the function at index 2, not yet scheduled. */
static struct ltimer *
new_timer(lua_State *L, enum ltimer_kind kind)
{
	struct rule *r = lapi_rule(L);
	struct ltimer *t;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (r->retired)
		luaL_error(L, "timer: this version of the rule was "
		    "replaced by a reload");
	t = lua_newuserdatauv(L, sizeof(*t), 0);
	*t = (struct ltimer){ .rule = r, .fn_ref = LUA_NOREF,
	    .self_ref = LUA_NOREF, .kind = kind };
	luaL_setmetatable(L, HANDLE_META);
	lua_pushvalue(L, 2);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return t;
}

/* Schedules the handle on top of the stack and returns it. */
static int
schedule(lua_State *L, struct ltimer *t, double when)
{
	t->when = when;
	if ((t->id = timer_add(t->when, on_due, t, t->rule)) == 0)
		return luaL_error(L, "timer: out of memory");
	lua_pushvalue(L, -1);
	t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 1;
}

static double
check_seconds(lua_State *L, bool allow_zero)
{
	double s = luaL_checknumber(L, 1);

	luaL_argcheck(L, isfinite(s) && (allow_zero ? s >= 0 : s > 0), 1,
	    allow_zero ? "seconds must be 0 or more" :
	    "seconds must be more than 0");
	return s;
}

static int
l_every(lua_State *L)
{
	double s = check_seconds(L, false);
	struct ltimer *t = new_timer(L, LTIMER_EVERY);

	t->interval = s;
	return schedule(L, t, clock_now() + s);
}

/* Keys are plain names, so the saved file needs no escaping for them. */
static bool
key_ok(const char *k, size_t len)
{
	if (len == 0 || len > 200)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)k[i]) && strchr("_.:/@-", k[i]) ==
		    NULL)
			return false;
	return true;
}

/* opts.key and opts.data of timer.after: copied into t. */
static void
take_key(lua_State *L, struct ltimer *t)
{
	size_t len;
	const char *k;

	luaL_checktype(L, 3, LUA_TTABLE);
	if (lua_getfield(L, 3, "key") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	k = luaL_checklstring(L, -1, &len);
	if (!key_ok(k, len))
		luaL_error(L, "timer.after: key must be 1 to 200 letters, "
		    "digits or _.:/@-");
	if ((t->key = strdup(k)) == NULL)
		luaL_error(L, "timer.after: out of memory");
	if (lua_getfield(L, 3, "data") != LUA_TNIL) {
		json_encode_push(L, -1);
		if ((t->data = strdup(lua_tostring(L, -1))) == NULL)
			luaL_error(L, "timer.after: out of memory");
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static int
l_after(lua_State *L)
{
	double s = check_seconds(L, true);
	bool has_opts = !lua_isnoneornil(L, 3);
	struct ltimer *t;

	lua_settop(L, 3);	/* the handle goes above the arguments */
	t = new_timer(L, LTIMER_ONCE);
	if (has_opts)
		take_key(L, t);
	schedule(L, t, clock_now() + s);
	if (t->key != NULL)
		keyed_link(t);
	return 1;
}

/* timer.restore(fn): fn(key, data) runs for each keyed timer of the
 * rule that was pending when the daemon stopped (or when a reload
 * replaced the rule's previous version), at the time it was due. */
static int
l_restore(lua_State *L)
{
	struct rule *r = lapi_rule(L);

	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (!r->loading)
		return luaL_error(L, "timer.restore: call it while the rule "
		    "loads");
	luaL_unref(L, LUA_REGISTRYINDEX, r->restore_ref);
	lua_pushvalue(L, 1);
	r->restore_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static int
l_cron(lua_State *L)
{
	size_t len;
	const char *spec = luaL_checklstring(L, 1, &len);
	struct cron_spec cs;
	struct ltimer *t;
	char err[256];
	double when;

	if (strlen(spec) != len)
		return luaL_error(L, "timer.cron: the spec holds a NUL byte");
	if (cron_parse(spec, &cs, err, sizeof(err)) == -1)
		return luaL_error(L, "timer.cron: %s", err);
	/* A spec such as "0 0 30 2 *" would never run: say so at load. */
	if ((when = cron_next(&cs, clock_now())) == -1)
		return luaL_error(L, "timer.cron: \"%s\" never matches", spec);
	t = new_timer(L, LTIMER_CRON);
	t->cron = cs;
	return schedule(L, t, when);
}

static void
create_handle_meta(lua_State *L)
{
	if (!luaL_newmetatable(L, HANDLE_META))
		return;
	lua_pushcfunction(L, l_gc);
	lua_setfield(L, -2, "__gc");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_cancel);
	lua_setfield(L, -2, "cancel");
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "timer");
	lua_setfield(L, -2, "__metatable");
}

void
lapi_timer_push(lua_State *L, struct rule *r)
{
	static const luaL_Reg fns[] = {
		{ "every", l_every }, { "after", l_after },
		{ "cron", l_cron }, { "restore", l_restore }, { NULL, NULL }
	};

	create_handle_meta(L);
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);
	lua_pushlightuserdata(L, r);
	luaL_setfuncs(L, fns, 1);
}

/* Saved keyed timers: one JSON object per line, {"rule", "key", "due",
 * "data"}, data being the JSON text as a string. */
static void
put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	log_json_string(f, s);
	fputc('"', f);
}

bool
lapi_timer_dirty(void)
{
	return keyed_dirty;
}

int
lapi_timer_save(const char *path)
{
	char tmp[4096];
	FILE *f;

	if ((f = path_replace_open(path, tmp, sizeof(tmp))) == NULL)
		return -1;
	for (struct ltimer *t = keyed; t != NULL; t = t->knext) {
		fputs("{\"rule\":", f);
		put_quoted(f, t->rule->name);
		fprintf(f, ",\"key\":\"%s\",\"due\":%.3f,\"data\":", t->key,
		    t->when);
		if (t->data != NULL)
			put_quoted(f, t->data);
		else
			fputs("null", f);
		fputs("}\n", f);
	}
	if (path_replace_commit(f, tmp, path, 0) == -1)
		return -1;
	keyed_dirty = false;
	return 0;
}

struct revival {
	const char	*key, *data;
	double		 due;
};

/* In r's state, protected: a keyed timer that calls timer.restore's
 * function at due, or at once when that has passed. */
static int
revive_protected(lua_State *L)
{
	struct rule *r = lua_touserdata(L, 1);
	struct revival *v = lua_touserdata(L, 2);
	struct ltimer *t;

	t = lua_newuserdatauv(L, sizeof(*t), 0);
	*t = (struct ltimer){ .rule = r, .fn_ref = LUA_NOREF,
	    .self_ref = LUA_NOREF, .kind = LTIMER_ONCE };
	luaL_setmetatable(L, HANDLE_META);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->restore_ref);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if ((t->key = strdup(v->key)) == NULL ||
	    (v->data != NULL && (t->data = strdup(v->data)) == NULL))
		return luaL_error(L, "out of memory");
	schedule(L, t, fmax(v->due, clock_now()));
	keyed_link(t);
	return 0;
}

static int
revive(struct rule *r, const char *key, const char *data, double due)
{
	struct revival v = { key, data, due };
	lua_State *L = r->L;

	lua_pushcfunction(L, revive_protected);
	lua_pushlightuserdata(L, r);
	lua_pushlightuserdata(L, &v);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		log_error("rule %s: cannot restore timer %s: %s", r->name, key,
		    lua_tostring(L, -1));
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

void
lapi_timer_forget(struct rule *r, struct rule *heir)
{
	struct ltimer *t, *next;

	for (t = keyed; t != NULL; t = next) {
		next = t->knext;
		if (t->rule != r)
			continue;
		if (heir != NULL && heir->restore_ref != LUA_NOREF)
			revive(heir, t->key, t->data, t->when);
		else if (heir != NULL)
			log_warn("rule %s: timer %s dropped: the new version "
			    "has no timer.restore", r->name, t->key);
		keyed_unlink(t);
	}
}

static struct rule *
rule_named(struct rule_set *rs, const char *name)
{
	for (struct rule *r = rs->rules; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* One saved line; returns whether a timer was restored. */
static bool
restore_line(struct rule_set *rs, const char *line)
{
	cJSON *o = cJSON_Parse(line);
	const cJSON *rule, *key, *due, *data;
	struct rule *r;
	bool done = false;

	rule = cJSON_GetObjectItemCaseSensitive(o, "rule");
	key = cJSON_GetObjectItemCaseSensitive(o, "key");
	due = cJSON_GetObjectItemCaseSensitive(o, "due");
	data = cJSON_GetObjectItemCaseSensitive(o, "data");
	if (!cJSON_IsString(rule) || !cJSON_IsString(key) ||
	    !cJSON_IsNumber(due)) {
		if (o != NULL || line[0] != '\n')
			log_warn("timers: a saved line is not a timer; "
			    "skipped");
	} else if ((r = rule_named(rs, rule->valuestring)) == NULL ||
	    r->restore_ref == LUA_NOREF)
		log_warn("timers: timer %s of rule %s dropped: %s",
		    key->valuestring, rule->valuestring, r == NULL ?
		    "no such rule" : "the rule has no timer.restore");
	else
		done = revive(r, key->valuestring, cJSON_IsString(data) ?
		    data->valuestring : NULL, due->valuedouble) == 0;
	cJSON_Delete(o);
	return done;
}

int
lapi_timer_restore(struct rule_set *rs, const char *path)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0, n = 0;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (getline(&line, &cap, f) != -1)
		n += restore_line(rs, line);
	free(line);
	fclose(f);
	if (n > 0)
		log_info("timers: %zu pending timers restored from %s", n,
		    path);
	keyed_dirty = true;
	return (int)n;
}
