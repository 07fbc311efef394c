/* timer.every, timer.after and timer.cron: callbacks on the daemon's
 * clock, each run in its own coroutine. */
#include <math.h>

#include <lauxlib.h>

#include "clock.h"
#include "lapi.h"
#include "rule.h"
#include "timer.h"

#define HANDLE_META	"mqttrules.timer"

/* Lives as the handle's userdata; anchored in the registry while it is
 * scheduled, so a rule need not keep the handle. */
struct ltimer {
	struct rule	*rule;
	int		 fn_ref;
	int		 self_ref;	/* LUA_NOREF when not scheduled */
	double		 when, interval;	/* interval 0: once */
	uint64_t	 id;
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

static void
on_due(void *ctx)
{
	struct ltimer *t = ctx;
	lua_State *L = t->rule->L;
	double now = clock_now();

	t->id = 0;
	if (t->interval > 0) {
		/* Keep to the original grid; skip ticks missed while busy. */
		t->when += t->interval;
		if (t->when <= now)
			t->when = now + t->interval;
		t->id = timer_add(t->when, on_due, t, t->rule);
	}
	/* The callback may cancel and drop the last handle: keep the
	 * userdata alive until this function is done with it. */
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
	rule_start(t->rule, t->fn_ref, NULL, push_nothing, NULL);
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

static int
schedule(lua_State *L, double delay, double interval)
{
	struct rule *r = lapi_rule(L);
	struct ltimer *t;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	t = lua_newuserdatauv(L, sizeof(*t), 0);
	*t = (struct ltimer){ .rule = r, .fn_ref = LUA_NOREF,
	    .self_ref = LUA_NOREF, .interval = interval };
	luaL_setmetatable(L, HANDLE_META);
	lua_pushvalue(L, 2);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->when = clock_now() + delay;
	if ((t->id = timer_add(t->when, on_due, t, r)) == 0)
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

	return schedule(L, s, s);
}

static int
l_after(lua_State *L)
{
	return schedule(L, check_seconds(L, true), 0);
}

static int
l_cron(lua_State *L)
{
	return luaL_error(L, "timer.cron: cron specs are not supported in "
	    "this version");
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
