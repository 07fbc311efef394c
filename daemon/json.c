/* JSON text to Lua values and back: cJSON parses, our own writer prints. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>

#include "json.h"

#define JSON_MAXDEPTH	64

/* strtoll feeds lua_pushinteger directly. */
_Static_assert(LUA_MAXINTEGER == LLONG_MAX, "lua_Integer is not long long");

/* Metatables that mark tables made by this file. */
enum mark {
	MARK_NONE,
	MARK_OBJECT,
	MARK_ARRAY,
	MARK_RAW
};

static const char *const mark_names[] = {
	NULL,
	"mqttrules.json.object",
	"mqttrules.json.array",
	"mqttrules.json.raw"
};

/* A text cJSON accepted, and the cursor of the number literal scan. */
struct parse {
	cJSON	*root;
	char	*buf;		/* NUL-terminated copy of the text */
	size_t	 len;
	size_t	 cursor;
	size_t	 errpos;	/* where the text stops being JSON */
};

struct encode {
	lua_State	*L;
	int		 depth;
	const void	*path[JSON_MAXDEPTH];	/* tables being encoded */
};

struct key {
	const char	*s;
	size_t		 len;
};

static int		 is_digit(int);
static int		 is_space(int);
static int		 utf8_seq(const unsigned char *, size_t);
static size_t		 number_end(const unsigned char *, size_t, size_t);
static size_t		 skip_digits(const unsigned char *, size_t, size_t);
static int		 number_ok(const unsigned char *, size_t);
static int		 check_escape(const unsigned char *, size_t, size_t);
static int		 check_string(const unsigned char *, size_t, size_t *);
static int		 check_text(const unsigned char *, size_t, size_t *);
static int		 parse(struct parse *, const char *, size_t);
static void		 parse_free(struct parse *);
static size_t		 skip_string(const unsigned char *, size_t, size_t);
static size_t		 next_literal(struct parse *, char *, size_t);
static void		 set_mark(lua_State *, enum mark);
static enum mark	 table_mark(lua_State *, int);
static void		 push_node(lua_State *, struct parse *, const cJSON *);
static void		 push_number(lua_State *, struct parse *,
			    const cJSON *);
static void		 push_array(lua_State *, struct parse *, const cJSON *);
static void		 push_object(lua_State *, struct parse *,
			    const cJSON *);
static int		 decode_protected(lua_State *);
static void		 push_parsed(lua_State *, struct parse *);
static void		 add_escape(luaL_Buffer *, unsigned char);
static void		 add_quoted(luaL_Buffer *, const char *, size_t);
static void		 encode_value(struct encode *, int);
static void		 encode_number(lua_State *, int);
static void		 encode_string(lua_State *, int);
static void		 encode_table(struct encode *, int);
static lua_Integer	 array_length(lua_State *, int, enum mark);
static void		 encode_array(struct encode *, int, lua_Integer);
static int		 key_cmp(const void *, const void *);
static struct key	*sorted_keys(lua_State *, int, size_t *);
static void		 encode_object(struct encode *, int);
static void		 add_encoded(struct encode *, luaL_Buffer *);
static int		 json_lib_encode(lua_State *);
static int		 json_lib_decode(lua_State *);
static int		 json_lib_raw(lua_State *);

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The four bytes JSON allows between tokens. */
static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Length of the UTF-8 sequence at s[0..len). When it is not valid,
 * minus the length of its longest valid beginning (at least 1): the
 * bytes that one U+FFFD stands for.
 */
static int
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int i, n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return -1;

	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;

	for (i = 1; i < n; i++) {
		if ((size_t)i >= len || s[i] < lo || s[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/* Index just past the run of bytes that may belong to a number at i. */
static size_t
number_end(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' ||
	    s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
		i++;
	return i;
}

static size_t
skip_digits(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && is_digit(s[i]))
		i++;
	return i;
}

/* True when s[0..n) is exactly a number of the JSON grammar. */
static int
number_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, j;

	if (i < n && s[i] == '-')
		i++;
	j = skip_digits(s, n, i);
	if (j == i || (s[i] == '0' && j > i + 1))
		return 0;
	i = j;

	if (i < n && s[i] == '.') {
		j = skip_digits(s, n, i + 1);
		if (j == i + 1)
			return 0;
		i = j;
	}

	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		j = skip_digits(s, n, i);
		if (j == i)
			return 0;
		i = j;
	}
	return i == n;
}

/* 0 when the backslash at s[i] starts a JSON escape, else -1. */
static int
check_escape(const unsigned char *s, size_t n, size_t i)
{
	size_t k;

	if (i + 1 >= n)
		return -1;
	if (s[i + 1] != 'u')
		return s[i + 1] != '\0' &&
		    strchr("\"\\/bfnrt", s[i + 1]) != NULL ? 0 : -1;
	if (i + 6 > n)
		return -1;
	for (k = i + 2; k < i + 6; k++)
		if (!is_digit(s[k]) && ((s[k] | 0x20) < 'a' ||
		    (s[k] | 0x20) > 'f'))
			return -1;
	return 0;
}

/*
 * Checks the string that opens at *ip and moves *ip past it; on an
 * error leaves *ip on the offending byte and returns -1.
 */
static int
check_string(const unsigned char *s, size_t n, size_t *ip)
{
	size_t i = *ip + 1;
	int len;

	while (i < n && s[i] != '"') {
		*ip = i;
		if (s[i] == '\\') {
			if (check_escape(s, n, i) == -1)
				return -1;
			i += s[i + 1] == 'u' ? 6 : 2;
		} else if (s[i] < 0x20)
			return -1;
		else if ((len = utf8_seq(s + i, n - i)) < 0)
			return -1;
		else
			i += len;
	}
	if (i >= n)
		return -1;
	*ip = i + 1;
	return 0;
}

/*
 * cJSON accepts more than JSON: any byte up to 0x20 as whitespace, raw
 * control bytes and any bytes inside strings, "\u" with bad hex digits,
 * numbers like 01 or 1. (see cJSON.c parse_number, parse_string).
 * This pass over a text cJSON accepted rejects those. Returns 0, or -1
 * with *errpos set.
 */
static int
check_text(const unsigned char *s, size_t n, size_t *errpos)
{
	size_t i = 0, end;
	int rc = 0;

	while (i < n && rc == 0) {
		if (s[i] == '"')
			rc = check_string(s, n, &i);
		else if (s[i] == '-' || is_digit(s[i])) {
			end = number_end(s, n, i);
			if ((rc = number_ok(s + i, end - i) ? 0 : -1) == 0)
				i = end;
		} else if (s[i] >= 0x80 || (s[i] < 0x20 && !is_space(s[i])))
			rc = -1;
		else
			i++;
	}
	*errpos = i;
	return rc;
}

/*
 * Parses text[0..len) into p. Returns 0, or -1 with p->errpos set and
 * nothing to free. cJSON 1.7.15 reads one byte past a text that ends
 * inside an object (cJSON#800), hence the NUL-terminated copy.
 */
static int
parse(struct parse *p, const char *text, size_t len)
{
	const char *end = NULL;

	memset(p, 0, sizeof(*p));
	if (len == 0 || (p->buf = malloc(len + 1)) == NULL)
		return -1;
	memcpy(p->buf, text, len);
	p->buf[len] = '\0';
	p->len = len;

	p->root = cJSON_ParseWithLengthOpts(p->buf, len, &end, 0);
	if (end != NULL)
		p->errpos = (size_t)(end - p->buf);
	if (p->root == NULL)
		goto fail;

	while (p->errpos < len && is_space(p->buf[p->errpos]))
		p->errpos++;
	if (p->errpos < len)
		goto fail;	/* something follows the value */

	if (check_text((unsigned char *)p->buf, len, &p->errpos) == -1)
		goto fail;
	return 0;

fail:
	parse_free(p);
	return -1;
}

static void
parse_free(struct parse *p)
{
	cJSON_Delete(p->root);
	free(p->buf);
	p->root = NULL;
	p->buf = NULL;
}

/* Index just past the string that opens at i. */
static size_t
skip_string(const unsigned char *s, size_t n, size_t i)
{
	for (i++; i < n && s[i] != '"'; i++)
		if (s[i] == '\\')
			i++;
	return i + 1;
}

/*
 * Copies the next number literal outside strings into lit and moves
 * the cursor past it. Returns its length, or 0 when it does not fit in
 * lit (then it is too long for an int64 anyway).
 */
static size_t
next_literal(struct parse *p, char *lit, size_t size)
{
	const unsigned char *s = (const unsigned char *)p->buf;
	size_t i = p->cursor, start;

	while (i < p->len && s[i] != '-' && !is_digit(s[i]))
		i = s[i] == '"' ? skip_string(s, p->len, i) : i + 1;
	start = i;
	p->cursor = i = number_end(s, p->len, i);
	if (i == start || i - start >= size)
		return 0;
	memcpy(lit, s + start, i - start);
	lit[i - start] = '\0';
	return i - start;
}

/* Gives the table on top of the stack the metatable for mark. */
static void
set_mark(lua_State *L, enum mark mark)
{
	luaL_newmetatable(L, mark_names[mark]);
	lua_setmetatable(L, -2);
}

static enum mark
table_mark(lua_State *L, int idx)
{
	enum mark m, found = MARK_NONE;

	if (!lua_getmetatable(L, idx))
		return MARK_NONE;
	for (m = MARK_OBJECT; m <= MARK_RAW && found == MARK_NONE; m++) {
		luaL_getmetatable(L, mark_names[m]);
		if (lua_rawequal(L, -1, -2))
			found = m;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return found;
}

static void
push_node(lua_State *L, struct parse *p, const cJSON *node)
{
	switch (node->type & 0xff) {
	case cJSON_False:
	case cJSON_True:
		lua_pushboolean(L, cJSON_IsTrue(node));
		break;
	case cJSON_NULL:
		lua_pushlightuserdata(L, NULL);
		break;
	case cJSON_Number:
		push_number(L, p, node);
		break;
	case cJSON_String:
		/* XXX cJSON keeps C strings: a \u0000 escape cuts them. */
		lua_pushstring(L, node->valuestring);
		break;
	case cJSON_Array:
		push_array(L, p, node);
		break;
	default:	/* cJSON_Object: the parser makes no other kind */
		push_object(L, p, node);
		break;
	}
}

/*
 * cJSON keeps numbers as doubles only. Number nodes are met in document
 * order, so the next literal in the text is this node's: an integral
 * one that fits becomes an exact integer.
 */
static void
push_number(lua_State *L, struct parse *p, const cJSON *node)
{
	char lit[32], *end;
	long long v;

	if (next_literal(p, lit, sizeof(lit)) > 0 &&
	    strpbrk(lit, ".eE") == NULL) {
		errno = 0;
		v = strtoll(lit, &end, 10);
		if (errno == 0 && *end == '\0') {
			lua_pushinteger(L, v);
			return;
		}
	}
	lua_pushnumber(L, node->valuedouble);
}

static void
push_array(lua_State *L, struct parse *p, const cJSON *node)
{
	const cJSON *child;
	lua_Integer i = 0;

	luaL_checkstack(L, 3, "json.decode");
	lua_createtable(L, cJSON_GetArraySize(node), 0);
	cJSON_ArrayForEach(child, node) {
		push_node(L, p, child);
		lua_rawseti(L, -2, ++i);
	}
	set_mark(L, MARK_ARRAY);
}

static void
push_object(lua_State *L, struct parse *p, const cJSON *node)
{
	const cJSON *child;

	luaL_checkstack(L, 4, "json.decode");
	lua_createtable(L, 0, cJSON_GetArraySize(node));
	cJSON_ArrayForEach(child, node) {
		/*
		 * Every member is pushed, in order, to keep the number scan
		 * in step; of repeated keys the last one wins.
		 */
		lua_pushstring(L, child->string);
		push_node(L, p, child);
		lua_rawset(L, -3);
	}
	set_mark(L, MARK_OBJECT);
}

static int
decode_protected(lua_State *L)
{
	struct parse *p = lua_touserdata(L, 1);

	push_node(L, p, p->root);
	return 1;
}

/*
 * Pushes the value of a parsed text and frees p. The tree is malloc'd,
 * so a Lua error while building tables is caught, p freed, and the
 * error raised again. Needs two free stack slots.
 */
static void
push_parsed(lua_State *L, struct parse *p)
{
	int status;

	lua_pushcfunction(L, decode_protected);
	lua_pushlightuserdata(L, p);
	status = lua_pcall(L, 1, 1, 0);
	parse_free(p);
	if (status != LUA_OK)
		lua_error(L);
}

int
json_decode_push(lua_State *L, const char *text, size_t len)
{
	struct parse p;

	luaL_checkstack(L, 2, "json.decode");
	if (parse(&p, text, len) == -1)
		return 0;
	push_parsed(L, &p);
	return 1;
}

int
json_valid(const char *text, size_t len)
{
	struct parse p;

	if (parse(&p, text, len) == -1)
		return 0;
	parse_free(&p);
	return 1;
}

static void
add_escape(luaL_Buffer *b, unsigned char c)
{
	static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
	const char *p;
	char u[8];

	if (c != '\0' && (p = strchr(from, c)) != NULL) {
		luaL_addchar(b, '\\');
		luaL_addchar(b, to[p - from]);
	} else {
		snprintf(u, sizeof(u), "\\u%04x", c);
		luaL_addstring(b, u);
	}
}

/*
 * Adds str as a JSON string. Invalid UTF-8 becomes U+FFFD, so that the
 * output is always JSON.
 */
static void
add_quoted(luaL_Buffer *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	int n;

	luaL_addchar(b, '"');
	while (i < len) {
		if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
			add_escape(b, s[i++]);
		else if (s[i] < 0x80)
			luaL_addchar(b, s[i++]);
		else if ((n = utf8_seq(s + i, len - i)) > 0) {
			luaL_addlstring(b, str + i, n);
			i += n;
		} else {
			luaL_addstring(b, "\\ufffd");
			i += -n;
		}
	}
	luaL_addchar(b, '"');
}

/*
 * Pushes the text of the value at idx (absolute). Each level builds its
 * text in its own luaL_Buffer: a buffer wants the top of the stack to
 * itself, and the values being walked must stay on the stack.
 */
static void
encode_value(struct encode *e, int idx)
{
	lua_State *L = e->L;

	luaL_checkstack(L, 6, "json.encode");
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		lua_pushliteral(L, "null");
		break;
	case LUA_TBOOLEAN:
		lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		encode_number(L, idx);
		break;
	case LUA_TSTRING:
		encode_string(L, idx);
		break;
	case LUA_TTABLE:
		encode_table(e, idx);
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL) {
			lua_pushliteral(L, "null");
			break;
		}
		/* FALLTHROUGH */
	default:
		luaL_error(L, "json.encode: cannot encode a %s",
		    luaL_typename(L, idx));
	}
}

/*
 * Integers print exactly. A float prints with the fewest of 15, 16 or
 * 17 digits that read back as the same double, and keeps a ".0" when
 * it looks integral, so that decoding gives a float again.
 */
static void
encode_number(lua_State *L, int idx)
{
	char buf[64];
	double x;
	int prec;

	if (lua_isinteger(L, idx)) {
		snprintf(buf, sizeof(buf), LUA_INTEGER_FMT,
		    (LUAI_UACINT)lua_tointeger(L, idx));
		lua_pushstring(L, buf);
		return;
	}

	x = lua_tonumber(L, idx);
	if (!isfinite(x))
		luaL_error(L, "json.encode: cannot encode a non-finite number");
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	if (strspn(buf, "-0123456789") == strlen(buf))
		strcat(buf, ".0");
	lua_pushstring(L, buf);
}

static void
encode_string(lua_State *L, int idx)
{
	luaL_Buffer b;
	const char *s;
	size_t len;

	s = lua_tolstring(L, idx, &len);
	luaL_buffinit(L, &b);
	add_quoted(&b, s, len);
	luaL_pushresult(&b);
}

static void
encode_table(struct encode *e, int idx)
{
	lua_State *L = e->L;
	const void *t = lua_topointer(L, idx);
	lua_Integer n;
	enum mark mark;
	int i;

	if ((mark = table_mark(L, idx)) == MARK_RAW) {
		lua_pushliteral(L, "text");
		if (lua_rawget(L, idx) != LUA_TSTRING)
			luaL_error(L,
			    "json.encode: json.raw value lost its text");
		return;
	}

	/* Only the tables on the path down count: a shared table is fine. */
	for (i = 0; i < e->depth; i++)
		if (e->path[i] == t)
			luaL_error(L, "json.encode: cycle in value");
	if (e->depth == JSON_MAXDEPTH)
		luaL_error(L, "json.encode: nesting deeper than %d",
		    JSON_MAXDEPTH);

	e->path[e->depth++] = t;
	if ((n = array_length(L, idx, mark)) >= 0)
		encode_array(e, idx, n);
	else
		encode_object(e, idx);
	e->depth--;
}

/*
 * Returns n when the table at idx is an array of n elements, or -1 for
 * an object. A table with the array mark must have exactly the keys
 * 1..n (holes would be ambiguous); an unmarked one is an array when it
 * has them and n > 0.
 */
static lua_Integer
array_length(lua_State *L, int idx, enum mark mark)
{
	lua_Integer count = 0, max = 0, k;

	if (mark == MARK_OBJECT)
		return -1;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1) {
			lua_pop(L, 1);
			max = -1;
			break;
		}
		count++;
		if (k > max)
			max = k;
	}
	if (count == max && (count > 0 || mark == MARK_ARRAY))
		return count;
	if (mark == MARK_ARRAY)
		luaL_error(L, "json.encode: array keys are not 1..n");
	return -1;
}

static void
encode_array(struct encode *e, int idx, lua_Integer n)
{
	luaL_Buffer b;
	lua_Integer i;

	luaL_buffinit(e->L, &b);
	luaL_addchar(&b, '[');
	for (i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ',');
		lua_rawgeti(e->L, idx, i);
		add_encoded(e, &b);
	}
	luaL_addchar(&b, ']');
	luaL_pushresult(&b);
}

/* Bytewise, a prefix first: the same order whatever the locale. */
static int
key_cmp(const void *a, const void *b)
{
	const struct key *ka = a, *kb = b;
	int c;

	c = memcmp(ka->s, kb->s, ka->len < kb->len ? ka->len : kb->len);
	if (c != 0)
		return c;
	return (ka->len > kb->len) - (ka->len < kb->len);
}

/*
 * Pushes a userdata holding the keys of the table at idx, sorted, and
 * returns it. The key strings stay alive as keys of the table, which
 * nothing changes while it is encoded.
 */
static struct key *
sorted_keys(lua_State *L, int idx, size_t *np)
{
	struct key *keys;
	size_t n = 0;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		n++;
	}
	keys = lua_newuserdatauv(L, n * sizeof(*keys), 0);

	n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "json.encode: object key of type %s",
			    luaL_typename(L, -1));
		keys[n].s = lua_tolstring(L, -1, &keys[n].len);
		n++;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	*np = n;
	return keys;
}

static void
encode_object(struct encode *e, int idx)
{
	lua_State *L = e->L;
	struct key *keys;
	luaL_Buffer b;
	size_t i, n;

	keys = sorted_keys(L, idx, &n);
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			luaL_addchar(&b, ',');
		add_quoted(&b, keys[i].s, keys[i].len);
		luaL_addchar(&b, ':');
		lua_pushlstring(L, keys[i].s, keys[i].len);
		lua_rawget(L, idx);
		add_encoded(e, &b);
	}
	luaL_addchar(&b, '}');
	luaL_pushresult(&b);
	lua_remove(L, -2);	/* the keys */
}

/* Pops the value on top of the stack and adds its text to b. */
static void
add_encoded(struct encode *e, luaL_Buffer *b)
{
	encode_value(e, lua_gettop(e->L));
	lua_remove(e->L, -2);
	luaL_addvalue(b);
}

void
json_encode_push(lua_State *L, int idx)
{
	struct encode e;

	e.L = L;
	e.depth = 0;
	encode_value(&e, lua_absindex(L, idx));
}

static int
json_lib_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	json_encode_push(L, 1);
	return 1;
}

/* Returns the value, or nil and where the text stops being JSON. */
static int
json_lib_decode(lua_State *L)
{
	struct parse p;
	const char *s;
	size_t len;

	s = luaL_checklstring(L, 1, &len);
	luaL_checkstack(L, 2, "json.decode");
	if (parse(&p, s, len) == -1) {
		lua_pushnil(L);
		lua_pushfstring(L, "invalid JSON at offset %I",
		    (LUAI_UACINT)p.errpos);
		return 2;
	}
	push_parsed(L, &p);
	return 1;
}

static int
json_lib_raw(lua_State *L)
{
	const char *s;
	size_t len;

	s = luaL_checklstring(L, 1, &len);
	if (!json_valid(s, len))
		return luaL_error(L, "json.raw: text is not valid JSON");
	lua_createtable(L, 0, 1);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "text");
	set_mark(L, MARK_RAW);
	return 1;
}

int
json_open(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "encode",	json_lib_encode },
		{ "decode",	json_lib_decode },
		{ "raw",	json_lib_raw },
		{ NULL,		NULL }
	};

	luaL_newlib(L, funcs);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	return 1;
}
