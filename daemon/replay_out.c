/* mqttrules test: the actions it prints, one JSON object per line. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "clock.h"
#include "json.h"
#include "replay_out.h"

static lua_State	*J;	/* encodes strings and header objects */
static FILE		*out;
static double		 origin;

void
replay_out_open(lua_State *L, FILE *f, double start)
{
	J = L;
	out = f;
	origin = start;
}

static void
put_encoded(int idx)
{
	size_t len;
	const char *s;

	json_encode_push(J, idx);
	s = lua_tolstring(J, -1, &len);
	fwrite(s, 1, len, out);
	lua_pop(J, 1);
}

static void
put_string(const char *s, size_t len)
{
	lua_pushlstring(J, s, len);
	put_encoded(-1);
	lua_pop(J, 1);
}

/* Milliseconds are as fine as the output needs; more digits would only
 * show the rounding of epoch seconds. */
static void
put_at(void)
{
	double at = round((clock_now() - origin) * 1000) / 1000;
	char buf[64];
	char *end;

	snprintf(buf, sizeof(buf), "%.3f", at);
	end = buf + strlen(buf) - 1;
	while (*end == '0')
		*end-- = '\0';
	if (*end == '.')
		*end = '\0';
	fputs(buf, out);
}

void
replay_out_begin(const char *rule, const char *action)
{
	fputs("{\"at\":", out);
	put_at();
	fputs(",\"rule\":", out);
	put_string(rule, strlen(rule));
	fprintf(out, ",\"action\":\"%s\"", action);
}

void
replay_out_string(const char *name, const char *value)
{
	fprintf(out, ",\"%s\":", name);
	if (value == NULL)
		fputs("null", out);
	else
		put_string(value, strlen(value));
}

void
replay_out_number(const char *name, long long value)
{
	fprintf(out, ",\"%s\":%lld", name, value);
}

void
replay_out_bool(const char *name, int value)
{
	fprintf(out, ",\"%s\":%s", name, value ? "true" : "false");
}

/* A body that is JSON goes out as that JSON value, anything else as a
 * string; no body as null. */
void
replay_out_body(const char *name, const char *body, size_t len)
{
	fprintf(out, ",\"%s\":", name);
	if (body == NULL)
		fputs("null", out);
	else if (json_valid(body, len))
		fwrite(body, 1, len, out);
	else
		put_string(body, len);
}

/* Headers as an object with sorted names, whatever order the rule's
 * table gave them in; libcurl's "Expect:" suppressor is left out. */
void
replay_out_headers(const char *name, const struct curl_slist *headers)
{
	const char *colon, *value;

	lua_newtable(J);
	for (; headers != NULL; headers = headers->next) {
		if ((colon = strchr(headers->data, ':')) == NULL ||
		    colon[1] == '\0')
			continue;
		value = colon + 1 + strspn(colon + 1, " ");
		lua_pushlstring(J, headers->data,
		    (size_t)(colon - headers->data));
		lua_pushstring(J, value);
		lua_settable(J, -3);
	}
	fprintf(out, ",\"%s\":", name);
	put_encoded(-1);
	lua_pop(J, 1);
}

void
replay_out_end(void)
{
	fputs("}\n", out);
	fflush(out);
}
