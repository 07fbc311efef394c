/* The `counter` table offered to rules: named, optionally windowed. */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "clock.h"
#include "counter.h"
#include "lapi.h"

static struct counter_store *
store_of(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* Keys are C strings in the store: a NUL would silently cut one short
 * and make two rules share a counter by accident. */
static const char *
check_key(lua_State *L, int arg)
{
	const char	*key;
	size_t		 len;

	key = luaL_checklstring(L, arg, &len);
	if (memchr(key, '\0', len) != NULL)
		luaL_argerror(L, arg, "must not contain a NUL byte");
	return key;
}

/* 0 when absent; like luaL_checkinteger, a float or a string with an
 * integral value is accepted. */
static int64_t
opt_window(lua_State *L, int arg)
{
	lua_Integer	 window;
	int		 isint;

	if (lua_isnoneornil(L, arg))
		return 0;
	window = lua_tointegerx(L, arg, &isint);
	if (!isint || window <= 0)
		luaL_argerror(L, arg,
		    "window must be a positive whole number of seconds");
	return window;
}

/*
 * The store returns -1 both for a failed allocation and for a count
 * that is -1. A failed increment changes nothing, so the count read
 * back differs from -1 unless nothing was to be added anyway.
 */
static int
counter_lincr(lua_State *L)
{
	struct counter_store	*store = store_of(L);
	const char		*key = check_key(L, 1);
	lua_Integer		 n = luaL_optinteger(L, 2, 1);
	int64_t			 window = opt_window(L, 3), count;
	double			 now = clock_now();

	count = counter_incr(store, key, n, window, now);
	if (count == -1 && counter_get(store, key, window, now) != -1)
		return luaL_error(L, "counter.incr: out of memory");
	lua_pushinteger(L, count);
	return 1;
}

static int
counter_lget(lua_State *L)
{
	struct counter_store	*store = store_of(L);
	const char		*key = check_key(L, 1);
	int64_t			 window = opt_window(L, 2);

	lua_pushinteger(L, counter_get(store, key, window, clock_now()));
	return 1;
}

static int
counter_lreset(lua_State *L)
{
	counter_reset(store_of(L), check_key(L, 1));
	return 0;
}

static int
counter_lclear(lua_State *L)
{
	const char	*prefix = NULL;

	if (!lua_isnoneornil(L, 1))
		prefix = check_key(L, 1);
	counter_clear(store_of(L), prefix);
	return 0;
}

static const luaL_Reg counter_funcs[] = {
	{ "incr",	counter_lincr },
	{ "get",	counter_lget },
	{ "reset",	counter_lreset },
	{ "clear",	counter_lclear },
	{ NULL,		NULL }
};

void
lapi_counter_push(lua_State *L, struct counter_store *store)
{
	lua_createtable(L, 0, 4);
	lua_pushlightuserdata(L, store);
	luaL_setfuncs(L, counter_funcs, 1);
}
