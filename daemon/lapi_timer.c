/* timer.every, timer.after and timer.cron: callbacks on the daemon's
 * clock, each run in its own coroutine. */
#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "clock.h"
#include "cron.h"
#include "lapi.h"
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
};

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

	luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
	t->fn_ref = LUA_NOREF;
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

static int
l_after(lua_State *L)
{
	double s = check_seconds(L, true);

	return schedule(L, new_timer(L, LTIMER_ONCE), clock_now() + s);
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
		{ "cron", l_cron }, { NULL, NULL }
	};

	create_handle_meta(L);
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);
	lua_pushlightuserdata(L, r);
	luaL_setfuncs(L, fns, 1);
}
