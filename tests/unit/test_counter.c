/* Unit tests for counter.c and the Lua `counter` table over it. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "clock.h"
#include "counter.h"
#include "lapi.h"

#define MANY_KEYS	100000

static int
store_setup(void **state)
{
	*state = counter_store_new();
	return *state == NULL ? -1 : 0;
}

static int
store_teardown(void **state)
{
	counter_store_free(*state);
	return 0;
}

/* The contract's example: half-open windows of whole seconds. */
static void
test_window_example(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "k", 1, 60, 0.0), 1);
	assert_int_equal(counter_incr(cs, "k", 1, 60, 30.0), 2);
	assert_int_equal(counter_get(cs, "k", 60, 59.9), 2);
	assert_int_equal(counter_get(cs, "k", 60, 60.0), 1);
	assert_int_equal(counter_get(cs, "k", 60, 89.9), 1);
	assert_int_equal(counter_get(cs, "k", 60, 90.0), 0);
	/* The all-time count is not windowed. */
	assert_int_equal(counter_get(cs, "k", 0, 90.0), 2);
	assert_int_equal(counter_incr(cs, "k", 1, 60, 90.5), 1);
	assert_int_equal(counter_incr(cs, "k", 1, 0, 91.0), 4);
	assert_int_equal(counter_get(cs, "k", 60, 91.0), 2);
}

/* Increments within one second share a bucket, wherever in it. */
static void
test_window_seconds(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "s", 1, 1, 10.0), 1);
	assert_int_equal(counter_incr(cs, "s", 1, 1, 10.999), 2);
	assert_int_equal(counter_get(cs, "s", 1, 10.5), 2);
	assert_int_equal(counter_get(cs, "s", 1, 11.0), 0);
	/* Widening the window brings the second before back. */
	assert_int_equal(counter_incr(cs, "s", 1, 2, 11.0), 3);
	assert_int_equal(counter_get(cs, "s", 1, 11.5), 1);
	assert_int_equal(counter_get(cs, "s", 2, 12.0), 1);
}

static void
test_many_keys_independent(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "a", 1, 0, 0), 1);
	assert_int_equal(counter_incr(cs, "b", 1, 0, 0), 1);
	assert_int_equal(counter_incr(cs, "a", 1, 0, 0), 2);
	assert_int_equal(counter_incr(cs, "c", 1, 10, 0), 1);
	assert_int_equal(counter_get(cs, "a", 0, 0), 2);
	assert_int_equal(counter_get(cs, "b", 0, 0), 1);
	assert_int_equal(counter_get(cs, "c", 10, 5), 1);
	assert_int_equal(counter_get(cs, "", 0, 0), 0);
	assert_int_equal(counter_get(cs, "missing", 10, 0), 0);
	assert_int_equal(counter_live_keys(cs), 3);
	assert_int_equal(counter_incr(cs, "", 3, 0, 0), 3);
	assert_int_equal(counter_live_keys(cs), 4);
}

static void
test_amounts(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "n", 5, 0, 0), 5);
	assert_int_equal(counter_incr(cs, "n", -7, 0, 1), -2);
	assert_int_equal(counter_get(cs, "n", 0, 2), -2);
	assert_int_equal(counter_incr(cs, "n", 0, 0, 3), -2);

	assert_int_equal(counter_incr(cs, "w", 10, 10, 0), 10);
	assert_int_equal(counter_incr(cs, "w", -3, 10, 5), 7);
	assert_int_equal(counter_get(cs, "w", 10, 10), -3);
	assert_int_equal(counter_get(cs, "w", 0, 10), 7);

	/* A count of -1 is a count, not an error. */
	assert_int_equal(counter_incr(cs, "m", -1, 0, 0), -1);
	assert_int_equal(counter_incr(cs, "mw", -1, 5, 0), -1);

	/* Counts saturate instead of wrapping. */
	assert_int_equal(counter_incr(cs, "big", INT64_MAX, 0, 0), INT64_MAX);
	assert_int_equal(counter_incr(cs, "big", 1, 0, 0), INT64_MAX);
	assert_int_equal(counter_incr(cs, "big", -1, 0, 0), INT64_MAX - 1);
}

/* A window wider than any the key was incremented with counts as the
 * widest; a key without any window counts 0 in a window. */
static void
test_window_wider_than_kept(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "k", 1, 60, 0), 1);
	assert_int_equal(counter_incr(cs, "k", 1, 60, 1), 2);
	assert_int_equal(counter_get(cs, "k", 3600, 30), 2);
	assert_int_equal(counter_get(cs, "k", 3600, 61), 0);
	assert_int_equal(counter_get(cs, "k", 0, 61), 2);
	assert_int_equal(counter_get(cs, "k", 30, 31), 0);
	assert_int_equal(counter_get(cs, "k", 31, 31), 1);

	assert_int_equal(counter_incr(cs, "plain", 4, 0, 0), 4);
	assert_int_equal(counter_get(cs, "plain", 60, 0), 0);
}

/* Wall clocks step back; an increment still lands in its own second. */
static void
test_clock_back(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "k", 1, 100, 100), 1);
	assert_int_equal(counter_incr(cs, "k", 2, 100, 50), 3);
	assert_int_equal(counter_incr(cs, "k", 4, 100, 70), 7);
	assert_int_equal(counter_get(cs, "k", 100, 100), 7);
	assert_int_equal(counter_get(cs, "k", 40, 100), 5);
	assert_int_equal(counter_get(cs, "k", 20, 100), 1);
	assert_int_equal(counter_get(cs, "k", 100, 169), 5);
	assert_int_equal(counter_get(cs, "k", 100, 170), 1);
}

static void
test_reset(void **state)
{
	struct counter_store	*cs = *state;

	assert_int_equal(counter_incr(cs, "k", 5, 60, 0), 5);
	assert_int_equal(counter_incr(cs, "j", 1, 0, 0), 1);
	counter_reset(cs, "k");
	counter_reset(cs, "unknown");
	assert_int_equal(counter_live_keys(cs), 1);
	assert_int_equal(counter_get(cs, "k", 60, 1), 0);
	assert_int_equal(counter_get(cs, "k", 0, 1), 0);
	assert_int_equal(counter_incr(cs, "k", 1, 0, 2), 1);
	assert_int_equal(counter_get(cs, "j", 0, 2), 1);
}

static void
test_clear_prefix(void **state)
{
	static const char *const keys[] = { "a/1", "a/2", "a/", "ab", "b",
	    "b/a/1", "" };
	struct counter_store	*cs = *state;
	size_t			 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(counter_incr(cs, keys[i], 2, 0, 0), 2);
	counter_clear(cs, "a/");
	assert_int_equal(counter_live_keys(cs), 4);
	assert_int_equal(counter_get(cs, "a/1", 0, 0), 0);
	assert_int_equal(counter_get(cs, "a/", 0, 0), 0);
	assert_int_equal(counter_get(cs, "ab", 0, 0), 2);
	assert_int_equal(counter_get(cs, "b/a/1", 0, 0), 2);
	assert_int_equal(counter_get(cs, "", 0, 0), 2);
	counter_clear(cs, "none");
	assert_int_equal(counter_live_keys(cs), 4);
	counter_clear(cs, "");
	assert_int_equal(counter_live_keys(cs), 0);
	assert_int_equal(counter_get(cs, "ab", 0, 0), 0);

	assert_int_equal(counter_incr(cs, "x", 1, 10, 0), 1);
	counter_clear(cs, NULL);
	assert_int_equal(counter_live_keys(cs), 0);
	assert_int_equal(counter_incr(cs, "x", 1, 10, 0), 1);
}

static void
test_expire(void **state)
{
	struct counter_store	*cs = *state;

	counter_incr(cs, "w", 1, 10, 100.5);
	counter_incr(cs, "plain", 1, 0, 100);
	counter_incr(cs, "wide", 1, 5, 100);
	counter_incr(cs, "wide", 1, 20, 101);
	counter_expire(cs, 105);
	assert_int_equal(counter_live_keys(cs), 3);
	/* Exactly window seconds idle: gone from every window, not yet
	 * idle longer than it. */
	counter_expire(cs, 110.9);
	assert_int_equal(counter_live_keys(cs), 3);
	assert_int_equal(counter_get(cs, "w", 0, 110.9), 1);
	counter_expire(cs, 111);
	assert_int_equal(counter_live_keys(cs), 2);
	assert_int_equal(counter_get(cs, "w", 0, 111), 0);
	counter_expire(cs, 121);
	assert_int_equal(counter_live_keys(cs), 2);
	counter_expire(cs, 122);
	assert_int_equal(counter_live_keys(cs), 1);
	counter_expire(cs, 1e9);
	assert_int_equal(counter_live_keys(cs), 1);
	assert_int_equal(counter_get(cs, "plain", 0, 1e9), 1);
}

/* A key incremented again lives on even when an earlier expiry was
 * noted for it. */
static void
test_expire_touched(void **state)
{
	struct counter_store	*cs = *state;

	counter_incr(cs, "a", 1, 10, 0);
	counter_incr(cs, "b", 1, 10, 5);
	counter_incr(cs, "a", 1, 10, 8);
	counter_expire(cs, 11);
	assert_int_equal(counter_live_keys(cs), 2);
	counter_expire(cs, 16);
	assert_int_equal(counter_live_keys(cs), 1);
	assert_int_equal(counter_get(cs, "a", 10, 16), 1);
	counter_expire(cs, 19);
	assert_int_equal(counter_live_keys(cs), 0);
	counter_incr(cs, "a", 1, 10, 20);
	counter_expire(cs, 31);
	assert_int_equal(counter_live_keys(cs), 0);
}

static void
many_key(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "%s/%zu", i % 2 ? "odd" : "even", i);
}

static void
test_many(void **state)
{
	struct counter_store	*cs = *state;
	char			 key[32];
	size_t			 i;

	for (i = 0; i < MANY_KEYS; i++) {
		many_key(key, sizeof(key), i);
		assert_int_equal(counter_incr(cs, key, i % 7 + 1,
		    i % 3 ? 0 : 60, 0), i % 7 + 1);
	}
	for (i = 0; i < MANY_KEYS; i += 3) {
		many_key(key, sizeof(key), i);
		assert_int_equal(counter_incr(cs, key, 1, 60, 1), i % 7 + 2);
	}
	assert_int_equal(counter_live_keys(cs), MANY_KEYS);
	for (i = 0; i < MANY_KEYS; i++) {
		many_key(key, sizeof(key), i);
		assert_int_equal(counter_get(cs, key, 0, 1),
		    i % 7 + 1 + (i % 3 ? 0 : 1));
	}
	counter_clear(cs, "odd/");
	assert_int_equal(counter_live_keys(cs), MANY_KEYS / 2);
	for (i = 0; i < MANY_KEYS; i++) {
		many_key(key, sizeof(key), i);
		assert_int_equal(counter_get(cs, key, 60, 1),
		    i % 2 || i % 3 ? 0 : i % 7 + 2);
	}
	counter_expire(cs, 62);
	assert_int_equal(counter_live_keys(cs), MANY_KEYS / 2 -
	    (MANY_KEYS / 2 + 2) / 3);
	counter_clear(cs, NULL);
	assert_int_equal(counter_live_keys(cs), 0);
	many_key(key, sizeof(key), 4);
	assert_int_equal(counter_get(cs, key, 0, 1), 0);
}

/* Lua side: a fresh state with the table as the global `counter`. */
static int
lua_setup(void **state)
{
	struct counter_store	*cs;
	lua_State		*L;

	if ((cs = counter_store_new()) == NULL)
		return -1;
	if ((L = luaL_newstate()) == NULL)
		return -1;
	luaL_openlibs(L);
	lapi_counter_push(L, cs);
	lua_setglobal(L, "counter");
	lua_pushlightuserdata(L, cs);
	lua_setfield(L, LUA_REGISTRYINDEX, "test.store");
	*state = L;
	return 0;
}

static int
lua_teardown(void **state)
{
	lua_State		*L = *state;
	struct counter_store	*cs;

	lua_getfield(L, LUA_REGISTRYINDEX, "test.store");
	cs = lua_touserdata(L, -1);
	lua_close(L);
	counter_store_free(cs);
	return 0;
}

/* Runs code at virtual time t; it must return an integer. */
static lua_Integer
run_int(lua_State *L, double t, const char *code)
{
	lua_Integer	v;

	clock_set_virtual(t);
	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("%s: %s", code, lua_tostring(L, -1));
	if (!lua_isinteger(L, -1))
		fail_msg("%s: returned %s, not an integer", code,
		    luaL_typename(L, -1));
	v = lua_tointeger(L, -1);
	lua_settop(L, 0);
	return v;
}

static void
run_fails(lua_State *L, const char *code, const char *want)
{
	const char	*msg;

	if (luaL_dostring(L, code) == LUA_OK)
		fail_msg("%s: did not fail", code);
	msg = lua_tostring(L, -1);
	if (msg == NULL || strstr(msg, want) == NULL)
		fail_msg("%s: '%s' lacks '%s'", code, msg, want);
	lua_settop(L, 0);
}

static void
test_lua_counts(void **state)
{
	lua_State	*L = *state;

	assert_int_equal(run_int(L, 0, "return counter.incr('k')"), 1);
	assert_int_equal(run_int(L, 0, "return counter.incr('k', 4)"), 5);
	assert_int_equal(run_int(L, 0, "return counter.incr('k', -6)"), -1);
	assert_int_equal(run_int(L, 0, "return counter.incr('k', 2.0)"), 1);
	assert_int_equal(run_int(L, 0, "return counter.get('k')"), 1);
	assert_int_equal(run_int(L, 0, "return counter.get('nope')"), 0);
	assert_int_equal(run_int(L, 0, "return counter.incr('n', -1)"), -1);
	assert_int_equal(run_int(L, 0, "return counter.incr(7)"), 1);
	assert_int_equal(run_int(L, 0, "return counter.get('7')"), 1);
}

static void
test_lua_window(void **state)
{
	lua_State	*L = *state;

	assert_int_equal(run_int(L, 0, "return counter.incr('w', 1, 60)"), 1);
	assert_int_equal(run_int(L, 30, "return counter.incr('w', 1, 60.0)"),
	    2);
	assert_int_equal(run_int(L, 59.9, "return counter.get('w', 60)"), 2);
	assert_int_equal(run_int(L, 60, "return counter.get('w', 60)"), 1);
	assert_int_equal(run_int(L, 90, "return counter.get('w', '60')"), 0);
	assert_int_equal(run_int(L, 90, "return counter.get('w')"), 2);
	assert_int_equal(run_int(L, 90, "return counter.get('w', nil)"), 2);
}

static void
test_lua_reset_clear(void **state)
{
	lua_State	*L = *state;

	assert_int_equal(run_int(L, 0, "counter.incr('a/1') "
	    "counter.incr('a/2') counter.incr('b', 3) "
	    "counter.reset('a/1') return counter.get('a/1')"), 0);
	assert_int_equal(run_int(L, 0, "return counter.get('a/2')"), 1);
	assert_int_equal(run_int(L, 0, "counter.clear('a/') "
	    "return counter.get('a/2') + counter.get('b')"), 3);
	assert_int_equal(run_int(L, 0, "counter.clear() "
	    "return counter.get('b')"), 0);
	assert_int_equal(run_int(L, 0, "counter.incr('c') counter.clear(nil) "
	    "return counter.get('c')"), 0);
}

static void
test_lua_errors(void **state)
{
	static const char *const bad_windows[] = {
		"counter.incr('k', 1, 0)",
		"counter.incr('k', 1, -5)",
		"counter.incr('k', 1, 1.5)",
		"counter.incr('k', 1, 'soon')",
		"counter.incr('k', 1, {})",
		"counter.incr('k', 1, 0/0)",
		"counter.incr('k', 1, math.huge)",
		"counter.get('k', 0)",
		"counter.get('k', 2.5)",
	};
	lua_State	*L = *state;
	size_t		 i;

	clock_set_virtual(0);
	for (i = 0; i < sizeof(bad_windows) / sizeof(bad_windows[0]); i++)
		run_fails(L, bad_windows[i],
		    "window must be a positive whole number of seconds");
	run_fails(L, "counter.incr()", "string expected");
	run_fails(L, "counter.incr({})", "string expected");
	run_fails(L, "counter.incr('k', 1.5)", "number has no integer");
	run_fails(L, "counter.incr('k', 'x')", "number expected");
	run_fails(L, "counter.get(nil)", "string expected");
	run_fails(L, "counter.reset()", "string expected");
	run_fails(L, "counter.clear({})", "string expected");
	run_fails(L, "counter.incr('a\\0b')", "NUL");
	assert_int_equal(run_int(L, 0, "return counter.get('k')"), 0);
}

/* What a restart brings back: totals, windows and their buckets. */
static void
test_save_and_load(void **state)
{
	struct counter_store *cs = *state, *back;
	char path[] = "/tmp/counters-test-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_false(counter_dirty(cs));
	counter_incr(cs, "sec:a|1.2.3.4", 1, 60, 1000);
	counter_incr(cs, "sec:a|1.2.3.4", 1, 60, 1030);
	counter_incr(cs, "plain", 5, 0, 1000);
	assert_true(counter_dirty(cs));
	assert_int_equal(counter_save(cs, path), 0);
	assert_false(counter_dirty(cs));

	back = counter_store_new();
	assert_int_equal(counter_load(back, path), 0);
	assert_int_equal(counter_live_keys(back), 2);
	assert_int_equal(counter_get(back, "sec:a|1.2.3.4", 60, 1040), 2);
	assert_int_equal(counter_get(back, "sec:a|1.2.3.4", 60, 1060), 1);
	assert_int_equal(counter_incr(back, "sec:a|1.2.3.4", 1, 60, 1061), 2);
	assert_int_equal(counter_get(back, "plain", 0, 5000), 5);
	counter_expire(back, 1200);
	assert_int_equal(counter_live_keys(back), 1);
	counter_store_free(back);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(write(fd, "garbage", 7) == 7);
	close(fd);
	back = counter_store_new();
	assert_int_equal(counter_load(back, path), -1);
	counter_store_free(back);
	unlink(path);
	assert_int_equal(counter_load(cs, path), 0);	/* missing: fine */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window_example,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_window_seconds,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_many_keys_independent,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_amounts,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_window_wider_than_kept,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_clock_back,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_reset,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_clear_prefix,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_expire,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_expire_touched,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_many,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_save_and_load,
		    store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_lua_counts,
		    lua_setup, lua_teardown),
		cmocka_unit_test_setup_teardown(test_lua_window,
		    lua_setup, lua_teardown),
		cmocka_unit_test_setup_teardown(test_lua_reset_clear,
		    lua_setup, lua_teardown),
		cmocka_unit_test_setup_teardown(test_lua_errors,
		    lua_setup, lua_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
