/* Unit tests for daemon/json.c: decoding, encoding and the json library. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json.h"

/* A text with its length, so that it may hold NUL bytes. */
struct text {
	const char	*s;
	size_t		 len;
};

#define TEXT(s)	{ (s), sizeof(s) - 1 }

static int
setup(void **state)
{
	lua_State *L;

	if ((L = luaL_newstate()) == NULL)
		return -1;
	luaL_openlibs(L);
	luaL_requiref(L, "json", json_open, 1);
	lua_pop(L, 1);
	*state = L;
	return 0;
}

static int
teardown(void **state)
{
	lua_close(*state);
	return 0;
}

/* Runs json_encode_push on argument 1; also returns how much it pushed. */
static int
encode_cb(lua_State *L)
{
	int top = lua_gettop(L);

	json_encode_push(L, 1);
	lua_pushinteger(L, lua_gettop(L) - top);
	return 2;
}

/* Encodes the value on top of the stack, pops it, leaves the text. */
static const char *
encode_top(lua_State *L)
{
	lua_pushcfunction(L, encode_cb);
	lua_insert(L, -2);
	assert_int_equal(lua_pcall(L, 1, 2, 0), LUA_OK);
	assert_int_equal(lua_tointeger(L, -1), 1);
	lua_pop(L, 1);
	assert_int_equal(lua_type(L, -1), LUA_TSTRING);
	return lua_tostring(L, -1);
}

static void
decode_ok(lua_State *L, const char *text)
{
	int top = lua_gettop(L);

	assert_int_equal(json_decode_push(L, text, strlen(text)), 1);
	assert_int_equal(lua_gettop(L), top + 1);
}

/* Runs Lua code that returns one string, and compares it. */
static void
lua_returns(lua_State *L, const char *code, const char *want)
{
	int top = lua_gettop(L);

	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("%s: %s", code, lua_tostring(L, -1));
	assert_int_equal(lua_gettop(L), top + 1);
	assert_int_equal(lua_type(L, -1), LUA_TSTRING);
	assert_string_equal(lua_tostring(L, -1), want);
	lua_settop(L, top);
}

static void
want_integer(lua_State *L, const char *text, lua_Integer want)
{
	decode_ok(L, text);
	assert_true(lua_isinteger(L, -1));
	assert_true(lua_tointeger(L, -1) == want);
	lua_pop(L, 1);
}

static void
want_float(lua_State *L, const char *text, double want)
{
	decode_ok(L, text);
	assert_int_equal(lua_type(L, -1), LUA_TNUMBER);
	assert_false(lua_isinteger(L, -1));
	assert_true(lua_tonumber(L, -1) == want);
	lua_pop(L, 1);
}

static void
want_roundtrip(lua_State *L, const char *in, const char *out)
{
	decode_ok(L, in);
	assert_string_equal(encode_top(L), out);
	lua_pop(L, 1);
}

static void
want_string(lua_State *L, const char *text, const char *want,
    size_t wantlen)
{
	size_t len;
	const char *s;

	decode_ok(L, text);
	assert_int_equal(lua_type(L, -1), LUA_TSTRING);
	s = lua_tolstring(L, -1, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(s, want, wantlen);
	lua_pop(L, 1);
}

static void
want_encoded(lua_State *L, const char *in, size_t inlen, const char *out)
{
	lua_pushlstring(L, in, inlen);
	assert_string_equal(encode_top(L), out);
	lua_pop(L, 1);
}

static void
test_decode_numbers(void **state)
{
	lua_State *L = *state;

	want_integer(L, "9007199254740993", 9007199254740993LL);
	want_integer(L, "9223372036854775807", INT64_MAX);
	want_integer(L, "-9223372036854775808", INT64_MIN);
	want_integer(L, "-0", 0);
	want_integer(L, "0", 0);
	want_float(L, "9223372036854775808", 9223372036854775808.0);
	want_float(L, "-9223372036854775809", -9223372036854775808.0);
	want_float(L, "1.5", 1.5);
	want_float(L, "1e3", 1000.0);
	want_float(L, "1E3", 1000.0);
	want_float(L, "2.0", 2.0);
	want_float(L, "-0.0", 0.0);

	decode_ok(L, "-0.0");
	assert_true(signbit(lua_tonumber(L, -1)));
	lua_pop(L, 1);
}

/* Digits inside strings and keys must not shift literals onto the wrong
 * number node. */
static void
test_decode_numbers_in_document(void **state)
{
	lua_State *L = *state;

	decode_ok(L, "[\"1\\\"2\", 9007199254740993, "
	    "{\"3e5\": -9223372036854775807, \"k\\\\\": [0.5, 7]}]");
	lua_rawgeti(L, -1, 2);
	assert_true(lua_isinteger(L, -1));
	assert_true(lua_tointeger(L, -1) == 9007199254740993LL);
	lua_pop(L, 1);
	assert_string_equal(encode_top(L), "[\"1\\\"2\",9007199254740993,"
	    "{\"3e5\":-9223372036854775807,\"k\\\\\":[0.5,7]}]");
	lua_pop(L, 1);
}

static void
test_encode_numbers(void **state)
{
	lua_State *L = *state;

	lua_returns(L, "return json.encode(math.maxinteger)",
	    "9223372036854775807");
	lua_returns(L, "return json.encode(math.mininteger)",
	    "-9223372036854775808");
	lua_returns(L, "return json.encode(42)", "42");
	lua_returns(L, "return json.encode(3.0)", "3.0");
	lua_returns(L, "return json.encode(-0.0)", "-0.0");
	lua_returns(L, "return json.encode(0.1)", "0.1");
	lua_returns(L, "return json.encode(0.1 + 0.2)",
	    "0.30000000000000004");
	lua_returns(L, "return json.encode(1 / 3)", "0.3333333333333333");
	lua_returns(L, "return json.encode(2.0 ^ 53)", "9007199254740992.0");
	lua_returns(L, "return json.encode(1e15)", "1e+15");
	lua_returns(L, "return json.encode(1e300)", "1e+300");
	lua_returns(L, "return json.encode(-1.5e-7)", "-1.5e-07");
	lua_returns(L, "local v = json.decode(json.encode(3.0)) "
	    "return math.type(v) .. ' ' .. tostring(v)", "float 3.0");
}

static void
test_roundtrip(void **state)
{
	lua_State *L = *state;

	want_roundtrip(L, "{\"a\":[],\"b\":{},\"n\":9007199254740993,"
	    "\"z\":null}",
	    "{\"a\":[],\"b\":{},\"n\":9007199254740993,\"z\":null}");
	want_roundtrip(L, " { \"z\" : 1 , \"a\" : 2, \"B\": 3, \"ab\": 4 } ",
	    "{\"B\":3,\"a\":2,\"ab\":4,\"z\":1}");
	want_roundtrip(L, "[]", "[]");
	want_roundtrip(L, "{}", "{}");
	want_roundtrip(L, "[[],[{}],{\"x\":[]}]", "[[],[{}],{\"x\":[]}]");
	/* Of repeated keys the last wins; later numbers stay in step. */
	want_roundtrip(L, "{\"a\":1,\"a\":2,\"b\":9007199254740993}",
	    "{\"a\":2,\"b\":9007199254740993}");
}

static void
test_nested(void **state)
{
	lua_State *L = *state;

	decode_ok(L, "{\"x\":[1,{\"y\":[true,false,null]}]}");
	lua_setglobal(L, "v");
	lua_returns(L, "local y = v.x[2].y "
	    "return tostring(#v.x) .. tostring(y[1]) .. tostring(y[2]) .. "
	    "tostring(y[3] == json.null) .. tostring(#y) .. "
	    "math.type(v.x[1])",
	    "2truefalsetrue3integer");
	lua_returns(L, "return json.encode(v)",
	    "{\"x\":[1,{\"y\":[true,false,null]}]}");
	lua_returns(L, "return json.encode({a = {1, 2, {b = true}}, c = 'x'})",
	    "{\"a\":[1,2,{\"b\":true}],\"c\":\"x\"}");
}

static void
test_null(void **state)
{
	lua_State *L = *state;

	decode_ok(L, "null");
	assert_int_equal(lua_type(L, -1), LUA_TLIGHTUSERDATA);
	assert_null(lua_touserdata(L, -1));
	assert_string_equal(encode_top(L), "null");
	lua_pop(L, 1);

	lua_returns(L, "return tostring(json.decode('[null]')[1] == json.null)",
	    "true");
	lua_returns(L, "return json.encode({json.null, json.null})",
	    "[null,null]");
	lua_returns(L, "return json.encode(nil)", "null");
}

static void
test_decode_strings(void **state)
{
	lua_State *L = *state;

	want_string(L, "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
	    "a\"b\\c/d\b\f\n\r\t", 12);
	want_string(L, "\"\\u00e9\\u20AC\"", "\xc3\xa9\xe2\x82\xac", 5);
	want_string(L, "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
	want_string(L, "\"\xc3\xa9\xf0\x9f\x98\x80\"",
	    "\xc3\xa9\xf0\x9f\x98\x80", 6);
	want_string(L, "\"\"", "", 0);
}

static void
test_encode_strings(void **state)
{
	lua_State *L = *state;

	want_encoded(L, "\"\\/\b\f\n\r\t", 8,
	    "\"\\\"\\\\/\\b\\f\\n\\r\\t\"");
	want_encoded(L, "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
	want_encoded(L, "a\0b", 3, "\"a\\u0000b\"");
	want_encoded(L, "\xc3\xa9\xf0\x9f\x98\x80", 6,
	    "\"\xc3\xa9\xf0\x9f\x98\x80\"");

	/* One U+FFFD per invalid byte sequence. */
	want_encoded(L, "\xff", 1, "\"\\ufffd\"");
	want_encoded(L, "a\xc3", 2, "\"a\\ufffd\"");
	want_encoded(L, "\xe2\x82" "A", 3, "\"\\ufffdA\"");
	want_encoded(L, "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	want_encoded(L, "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	want_encoded(L, "\xf4\x90\x80\x80", 4,
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	want_encoded(L, "\xf0\x9f\x98", 3, "\"\\ufffd\"");

	lua_returns(L, "return json.encode({['k\\n\\xff'] = 'v'})",
	    "{\"k\\n\\ufffd\":\"v\"}");
}

static void
test_toplevel_scalars(void **state)
{
	lua_State *L = *state;

	want_integer(L, "3", 3);
	want_integer(L, " \t\r\n3\n", 3);
	want_string(L, "\"x\"", "x", 1);
	want_float(L, " 2.5\r\n", 2.5);

	decode_ok(L, "true");
	assert_int_equal(lua_type(L, -1), LUA_TBOOLEAN);
	assert_true(lua_toboolean(L, -1));
	decode_ok(L, "false");
	assert_int_equal(lua_type(L, -1), LUA_TBOOLEAN);
	assert_false(lua_toboolean(L, -1));
	lua_pop(L, 2);

	assert_true(json_valid("null", 4));
	assert_true(json_valid("\"\"", 2));
}

static void
test_invalid(void **state)
{
	static const struct text bad[] = {
		TEXT(""), TEXT(" "), TEXT("\t\n"), TEXT("{"),
		TEXT("{\"1\":1,"), TEXT("[1,]"), TEXT("1 2"), TEXT("[1 2]"),
		TEXT("\xff\xfe"), TEXT("nul"), TEXT("{\"a\" 1}"), TEXT("[1] x"),
		TEXT("01"), TEXT("1."), TEXT("-"), TEXT(".5"), TEXT("+1"),
		TEXT("1.e5"), TEXT("1e"), TEXT("[\"\xff\"]"),
		TEXT("\"\xed\xa0\x80\""), TEXT("\"a\nb\""), TEXT("\"\\uZZZZ\""),
		TEXT("\"\\u12\""), TEXT("\"\\ud800\""), TEXT("\"\\x\""),
		TEXT("[1,\x01 2]"), TEXT("\xef\xbb\xbf" "1"), TEXT("1\0"),
		TEXT("\0 1"), TEXT("[\"a\0\"]"), TEXT("Infinity"),
		TEXT("{\"a\":1}}"), TEXT("'a'"),
	};
	lua_State *L = *state;
	size_t i;
	int top = lua_gettop(L);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (json_valid(bad[i].s, bad[i].len))
			fail_msg("text %zu is valid", i);
		if (json_decode_push(L, bad[i].s, bad[i].len) != 0)
			fail_msg("text %zu decodes", i);
		assert_int_equal(lua_gettop(L), top);
	}
}

/* The length is honoured: bytes past it are not read as JSON. */
static void
test_length(void **state)
{
	lua_State *L = *state;

	assert_true(json_valid("[1]x", 3));
	assert_false(json_valid("[1]x", 4));
	assert_false(json_valid("[1]", 2));
	assert_int_equal(json_decode_push(L, "123", 2), 1);
	assert_true(lua_tointeger(L, -1) == 12);
	lua_pop(L, 1);
}

static void
test_encode_tables(void **state)
{
	lua_State *L = *state;

	lua_returns(L, "return json.encode({})", "{}");
	lua_returns(L, "return json.encode({1, 'a', true})", "[1,\"a\",true]");
	lua_returns(L, "return json.encode({b = 1, a = {}})",
	    "{\"a\":{},\"b\":1}");
	lua_returns(L, "local t = json.decode('[]') t[1] = 5 t[2] = 6 "
	    "return json.encode(t)", "[5,6]");
	lua_returns(L, "local t = json.decode('[1, 2]') t[2] = nil "
	    "t[1] = nil return json.encode(t)", "[]");
	lua_returns(L, "local s = {1} return json.encode({s, s, {x = s}})",
	    "[[1],[1],{\"x\":[1]}]");
	lua_returns(L, "local function nest(n) local t = {} "
	    "for i = 2, n do t = {t} end return t end "
	    "return json.encode(nest(64))",
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}"
	    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	lua_returns(L, "local a = getmetatable(json.decode('[]')) "
	    "local o = getmetatable(json.decode('{}')) "
	    "return tostring(a == getmetatable(json.decode('[1]')) and "
	    "o == getmetatable(json.decode('{\"a\":1}')) and a ~= o and "
	    "a ~= nil and o ~= nil)", "true");
}

static void
test_encode_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "local t = {} t.self = t return t",
		    "json.encode: cycle in value" },
		{ "local t = {1} t[2] = {{t}} return t",
		    "json.encode: cycle in value" },
		{ "return {f = print}",
		    "json.encode: cannot encode a function" },
		{ "return 0 / 0",
		    "json.encode: cannot encode a non-finite number" },
		{ "return {math.huge}",
		    "json.encode: cannot encode a non-finite number" },
		{ "return -math.huge",
		    "json.encode: cannot encode a non-finite number" },
		{ "return coroutine.create(print)",
		    "json.encode: cannot encode a thread" },
		{ "return io.stdout", "json.encode: cannot encode a userdata" },
		{ "local t = {} for i = 2, 65 do t = {t} end return t",
		    "json.encode: nesting deeper than 64" },
		{ "return {[true] = 1}",
		    "json.encode: object key of type boolean" },
		{ "return {1, x = 2}",
		    "json.encode: object key of type number" },
		{ "return {[1] = 1, [3] = 3}",
		    "json.encode: object key of type number" },
		{ "local t = json.decode('{}') t[1] = 1 return t",
		    "json.encode: object key of type number" },
		{ "local t = json.decode('[1,2,3]') t[2] = nil return t",
		    "json.encode: array keys are not 1..n" },
		{ "local t = json.decode('[]') t.x = 1 return t",
		    "json.encode: array keys are not 1..n" },
	};
	lua_State *L = *state;
	char code[256], want[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(code, sizeof(code), "local function value() %s end "
		    "local ok, err = pcall(json.encode, value()) "
		    "return tostring(ok) .. ' ' .. tostring(err)", cases[i][0]);
		snprintf(want, sizeof(want), "false %s", cases[i][1]);
		lua_returns(L, code, want);
	}
}

static void
test_raw(void **state)
{
	lua_State *L = *state;

	lua_returns(L, "return json.encode({a = json.raw(' {\"b\" : 1} ')})",
	    "{\"a\": {\"b\" : 1} }");
	lua_returns(L, "return json.encode(json.raw('9007199254740993'))",
	    "9007199254740993");
	lua_returns(L, "return json.encode({json.raw('[]'), json.raw('\"\"')})",
	    "[[],\"\"]");
	lua_returns(L, "local ok, err = pcall(json.raw, '{') "
	    "return tostring(ok) .. ' ' .. err",
	    "false json.raw: text is not valid JSON");
	lua_returns(L, "local ok, err = pcall(json.raw, '\"\\xff\"') "
	    "return tostring(ok) .. ' ' .. err",
	    "false json.raw: text is not valid JSON");
	lua_returns(L, "local ok, err = pcall(json.raw, '1 2') "
	    "return tostring(ok) .. ' ' .. err",
	    "false json.raw: text is not valid JSON");
}

/* json.decode from Lua: a value, or nil and where the text went wrong. */
static void
test_lua_decode(void **state)
{
	lua_State *L = *state;

	lua_returns(L, "local v = json.decode('{\"id\": 9007199254740993}') "
	    "return math.type(v.id) .. ' ' .. v.id",
	    "integer 9007199254740993");
	lua_returns(L, "local v, err = json.decode('[1,]') "
	    "return tostring(v) .. ' ' .. err", "nil invalid JSON at offset 3");
	lua_returns(L, "local v, err = json.decode('1 2') "
	    "return tostring(v) .. ' ' .. err", "nil invalid JSON at offset 2");
	lua_returns(L, "local v, err = json.decode('[\"a\", 01]') "
	    "return tostring(v) .. ' ' .. err", "nil invalid JSON at offset 6");
	lua_returns(L, "local v, err = json.decode('') "
	    "return tostring(v) .. ' ' .. err", "nil invalid JSON at offset 0");
	lua_returns(L, "local v, err = json.decode('\"\\xc3(\"') "
	    "return tostring(v) .. ' ' .. err", "nil invalid JSON at offset 1");
	lua_returns(L, "return tostring(select('#', json.decode('false')))",
	    "1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_decode_numbers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_decode_numbers_in_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_numbers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_strings,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_strings,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_toplevel_scalars,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_tables,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_errors,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_decode,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
