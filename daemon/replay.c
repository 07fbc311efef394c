/* mqttrules test: recorded events through rules on a virtual clock, the
 * network replaced by canned answers. The rules run on the same code
 * path as under `run`: same API, counters, timers and HTTP retries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "clock.h"
#include "config.h"
#include "counter.h"
#include "dispatch.h"
#include "http.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "queue.h"
#include "replay.h"
#include "replay_out.h"
#include "rule.h"
#include "timer.h"

#define DEFAULT_START	"2025-01-01T00:00:00Z"
/* Timers and answers due at one instant before it counts as a loop. */
#define MAX_STEPS	1000000

struct answer {
	char	*method;	/* NULL: any */
	char	*url_prefix;
	long	 status;
	char	*body;
	size_t	 body_len;
};

struct replay {
	const char	*config_path, *events_path, *responses_path;
	const char	*start_text;
	double		 start, drain;
	long		 http_status;
	char		**rules;
	size_t		 nrules;
	struct answer	*answers;
	size_t		 nanswers;
	lua_State	*J;
	int		 failures;
};

static struct replay	R;

static int
usage(void)
{
	fprintf(stderr, "usage: mqttrules test [-c FILE] [--events FILE] "
	    "[--responses FILE]\n"
	    "           [--http-status CODE] [--start TIME] "
	    "[--drain SECONDS] RULE.lua...\n");
	return 2;
}

static int
parse_number(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || *out < lo ||
	    *out > hi ? -1 : 0;
}

static int
parse_option(int argc, char **argv, int *i)
{
	const char *opt = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	double n;

	if (val == NULL)
		return -1;
	(*i)++;
	if (strcmp(opt, "-c") == 0)
		R.config_path = val;
	else if (strcmp(opt, "--events") == 0)
		R.events_path = val;
	else if (strcmp(opt, "--responses") == 0)
		R.responses_path = val;
	else if (strcmp(opt, "--start") == 0)
		R.start_text = val;
	else if (strcmp(opt, "--drain") == 0)
		return parse_number(val, 0, 1e9, &R.drain);
	else if (strcmp(opt, "--http-status") == 0) {
		if (parse_number(val, 100, 599, &n) == -1)
			return -1;
		R.http_status = (long)n;
	} else
		return -1;
	return 0;
}

static int
parse_args(int argc, char **argv)
{
	R.start_text = DEFAULT_START;
	R.http_status = 200;
	R.rules = calloc((size_t)argc + 1, sizeof(*R.rules));
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
			if (parse_option(argc, argv, &i) == -1)
				return -1;
		} else
			R.rules[R.nrules++] = argv[i];
	}
	if (R.nrules == 0 || replay_parse_time(R.start_text, &R.start) == -1)
		return -1;
	return 0;
}

/* Advances the clock to t, firing every timer due on the way at its
 * own time. Returns -1 when one instant never settles. */
static int
advance_to(double t)
{
	double next;
	long steps = 0;

	while ((next = timer_next()) >= 0 && next <= t) {
		if (next > clock_now())
			clock_set_virtual(next);
		timer_run_due(clock_now());
		if (++steps > MAX_STEPS) {
			fprintf(stderr, "mqttrules test: timers keep firing at "
			    "the same instant; stopping\n");
			return -1;
		}
	}
	if (t > clock_now())
		clock_set_virtual(t);
	return 0;
}

static int
record_publish(const char *rule, const char *topic, const char *payload,
    size_t len, int qos, int retain)
{
	replay_out_begin(rule, "publish");
	replay_out_string("topic", topic);
	replay_out_body("payload", payload, len);
	replay_out_number("qos", qos);
	replay_out_bool("retain", retain);
	replay_out_end();
	return 0;
}

static void
record_log(const struct rule *r, const char *topic, enum log_level level,
    const char *message)
{
	static const char *const names[] = { "debug", "info", "warn",
	    "error" };

	replay_out_begin(r->name, "log");
	replay_out_string("level", names[level]);
	replay_out_string("message", message);
	if (topic != NULL)
		replay_out_string("topic", topic);
	replay_out_end();
}

static void
record_failure(const struct rule *r, const char *topic, const char *message)
{
	R.failures++;
	replay_out_begin(r->name, "error");
	replay_out_string("message", message);
	if (topic != NULL)
		replay_out_string("topic", topic);
	replay_out_end();
}

static const struct answer *
find_answer(const char *method, const char *url)
{
	for (size_t i = 0; i < R.nanswers; i++) {
		const struct answer *a = &R.answers[i];

		if ((a->method == NULL || strcmp(a->method, method) == 0) &&
		    strncmp(url, a->url_prefix, strlen(a->url_prefix)) == 0)
			return a;
	}
	return NULL;
}

static void
answer_request(const struct log_origin *o, const char *method,
    const char *url, const struct curl_slist *headers, const char *body,
    size_t body_len, long *status, char **answer, size_t *answer_len)
{
	const struct answer *a = find_answer(method, url);
	const char *text = a != NULL ? a->body : "{}";

	if (strcmp(method, "POST") == 0)
		replay_out_begin(o->rule, "http_post");
	else {
		replay_out_begin(o->rule, "http_request");
		replay_out_string("method", method);
	}
	replay_out_string("url", url);
	replay_out_headers("headers", headers);
	replay_out_body("body", body, body_len);
	replay_out_end();

	*status = a != NULL ? a->status : R.http_status;
	*answer_len = a != NULL ? a->body_len : strlen(text);
	if ((*answer = malloc(*answer_len + 1)) != NULL) {
		memcpy(*answer, text, *answer_len);
		(*answer)[*answer_len] = '\0';
	} else
		*answer_len = 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long
days_from_civil(long y, long m, long d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
replay_parse_time(const char *s, double *out)
{
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	double frac = 0;
	char sign;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
	    &n) != 6 || n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 60)
		return -1;
	s += n;
	if (*s == '.') {
		char *end;

		frac = strtod(s, &end);
		s = end;
	}
	*out = (double)days_from_civil(y, mo, d) * 86400 + h * 3600 +
	    mi * 60 + sec + frac;
	if (strcmp(s, "Z") == 0)
		return 0;
	if (sscanf(s, "%c%2d:%2d%n", &sign, &oh, &om, &n) != 3 ||
	    s[n] != '\0' || (sign != '+' && sign != '-'))
		return -1;
	*out -= (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60);
	return 0;
}

struct event {
	double	 at;
	char	*topic;
	char	*payload;
	size_t	 payload_len;
	int	 qos;
	int	 retain;
};

static char *
copy_bytes(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* Takes field name of the object at 1 as bytes: a string as it is, any
 * other JSON value encoded; NULL when absent. */
static char *
field_bytes(lua_State *L, const char *name, size_t *len)
{
	const char *s;

	if (lua_getfield(L, 1, name) == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		json_encode_push(L, -1);
	s = lua_tolstring(L, -1, len);
	return copy_bytes(s, *len);
}

static int
extract_event(lua_State *L)
{
	struct event *ev = lua_touserdata(L, 2);
	size_t len;

	lua_settop(L, 1);
	if (lua_getfield(L, 1, "at") != LUA_TNUMBER || lua_tonumber(L, -1) < 0)
		return luaL_error(L, "\"at\" must be a number >= 0");
	ev->at = lua_tonumber(L, -1);
	if (lua_getfield(L, 1, "topic") != LUA_TSTRING ||
	    lua_rawlen(L, -1) == 0)
		return luaL_error(L, "\"topic\" must be a non-empty string");
	ev->topic = copy_bytes(lua_tostring(L, -1), lua_rawlen(L, -1));
	lua_getfield(L, 1, "payload_raw");
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		return luaL_error(L, "\"payload_raw\" must be a string");
	lua_settop(L, 1);
	ev->payload = field_bytes(L, "payload", &ev->payload_len);
	if (ev->payload == NULL)
		ev->payload = field_bytes(L, "payload_raw", &ev->payload_len);
	if (ev->payload == NULL)
		ev->payload = copy_bytes("", len = 0);
	lua_getfield(L, 1, "qos");
	ev->qos = (int)luaL_optinteger(L, -1, 1);
	if (lua_getfield(L, 1, "retain") != LUA_TNIL &&
	    !lua_isboolean(L, -1))
		return luaL_error(L, "\"retain\" must be true or false");
	ev->retain = lua_toboolean(L, -1);
	if (ev->qos < 0 || ev->qos > 2)
		return luaL_error(L, "\"qos\" must be 0, 1 or 2");
	return 0;
}

/* Decodes a JSON-lines record into the object at 1 of J and runs fn on
 * it under protection. Returns 0, or -1 with err set. */
static int
with_record(const char *line, size_t len, lua_CFunction fn, void *out,
    char *err, size_t size)
{
	lua_State *J = R.J;

	lua_settop(J, 0);
	lua_pushcfunction(J, fn);
	if (!json_decode_push(J, line, len) || !lua_istable(J, -1)) {
		snprintf(err, size, "not a JSON object");
		return -1;
	}
	lua_pushlightuserdata(J, out);
	if (lua_pcall(J, 2, 0, 0) != LUA_OK) {
		snprintf(err, size, "%s", lua_tostring(J, -1));
		return -1;
	}
	return 0;
}

static void
event_free(struct event *ev)
{
	free(ev->topic);
	free(ev->payload);
	memset(ev, 0, sizeof(*ev));
}

static int
extract_answer(lua_State *L)
{
	struct answer *a = lua_touserdata(L, 2);

	lua_settop(L, 1);
	if (lua_getfield(L, 1, "url") != LUA_TSTRING)
		return luaL_error(L, "\"url\" must be a string");
	a->url_prefix = strdup(lua_tostring(L, -1));
	if (lua_getfield(L, 1, "method") == LUA_TSTRING)
		a->method = strdup(lua_tostring(L, -1));
	else if (!lua_isnil(L, -1))
		return luaL_error(L, "\"method\" must be a string");
	lua_getfield(L, 1, "status");
	a->status = (long)luaL_optinteger(L, -1, 200);
	if (a->status < 100 || a->status > 599)
		return luaL_error(L, "\"status\" must be 100..599");
	lua_settop(L, 1);
	a->body = field_bytes(L, "body", &a->body_len);
	if (a->body == NULL)
		a->body = copy_bytes("", a->body_len = 0);
	return 0;
}

/* Calls fn on each non-blank line of path ("-" for stdin); stops at the
 * first error, printed with file and line. Returns 0 or -1. */
static int
each_line(const char *path, int (*fn)(const char *, size_t, char *,
    size_t))
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *line = NULL, err[512];
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	if (f == NULL) {
		fprintf(stderr, "mqttrules test: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && (len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		if ((rc = fn(line, (size_t)len, err, sizeof(err))) == -1)
			fprintf(stderr, "mqttrules test: %s:%d: %s\n",
			    strcmp(path, "-") == 0 ? "stdin" : path, lineno,
			    err);
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int
add_answer(const char *line, size_t len, char *err, size_t size)
{
	struct answer *grown;

	grown = realloc(R.answers, (R.nanswers + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	R.answers = grown;
	memset(&R.answers[R.nanswers], 0, sizeof(*grown));
	R.nanswers++;
	return with_record(line, len, extract_answer,
	    &R.answers[R.nanswers - 1], err, size);
}

static struct rule_set	 rules;
static double		 last_at;

static int
replay_event(const char *line, size_t len, char *err, size_t size)
{
	struct event ev = { 0 };
	struct message *m;

	if (with_record(line, len, extract_event, &ev, err, size) == -1) {
		event_free(&ev);
		return -1;
	}
	if (ev.at < last_at) {
		snprintf(err, size, "\"at\" goes back from %g to %g", last_at,
		    ev.at);
		event_free(&ev);
		return -1;
	}
	last_at = ev.at;
	if (advance_to(R.start + ev.at) == -1)
		return -1;
	m = message_new(ev.topic, ev.payload, ev.payload_len, ev.qos,
	    ev.retain != 0, clock_now());
	event_free(&ev);
	if (m == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	dispatch_message(&rules, m, NULL, 0);
	return advance_to(clock_now());
}

static void
free_answers(void)
{
	for (size_t i = 0; i < R.nanswers; i++) {
		free(R.answers[i].method);
		free(R.answers[i].url_prefix);
		free(R.answers[i].body);
	}
	free(R.answers);
}

static int
on_panic(lua_State *L)
{
	fprintf(stderr, "mqttrules test: %s\n", lua_tostring(L, -1));
	exit(3);
}

/* Under `run` a handler still waiting (a retry, say) would go on and
 * could fail; a replay that ends first must not pass it as handled. */
static void
report_unfinished(void)
{
	for (struct rule *r = rules.rules; r != NULL; r = r->next) {
		for (struct invocation *i = r->running; i != NULL;
		    i = i->next)
			record_failure(r, i->topic, "still running when the "
			    "replay ended; give --drain more seconds");
	}
}

static int
run_replay(const struct config *c, struct counter_store *counters)
{
	static const struct rule_observer observer = { record_log,
	    record_failure };
	int rc;

	if (R.responses_path != NULL && each_line(R.responses_path,
	    add_answer) == -1)
		return 2;
	clock_set_virtual(R.start);
	srand(1);	/* retry jitter, the same in every run */
	http_set_answerer(answer_request);
	lapi_set_publisher(record_publish);
	rule_set_observer(&observer);
	replay_out_open(R.J, stdout, R.start);
	if (rule_set_load_files(&rules, c, counters, R.rules, R.nrules) != 0)
		return 1;
	rc = each_line(R.events_path != NULL ? R.events_path : "-",
	    replay_event);
	if (rc == 0)
		rc = advance_to(clock_now() + R.drain);
	if (rc == 0)
		report_unfinished();
	return rc == -1 ? 2 : R.failures > 0;
}

int
replay_main(int argc, char **argv)
{
	struct config c;
	struct counter_store *counters;
	enum log_level level;
	char err[512];
	int rc = 1;

	if (parse_args(argc, argv) == -1)
		return usage();
	if (config_load(&c, R.config_path, err, sizeof(err)) == -1) {
		fprintf(stderr, "mqttrules: %s\n", err);
		config_free(&c);
		return 1;
	}
	if (log_level_parse(c.log_level, &level) == 0)
		log_setup(level, strcmp(c.log_format, "json") == 0);
	R.J = luaL_newstate();
	counters = counter_store_new();
	if (R.J != NULL && counters != NULL && http_init(&c) == 0) {
		lua_atpanic(R.J, on_panic);
		rc = run_replay(&c, counters);
	}
	http_shutdown();
	dispatch_forget();
	rule_set_free(&rules);
	counter_store_free(counters);
	if (R.J != NULL)
		lua_close(R.J);
	free_answers();
	free(R.rules);
	config_free(&c);
	return rc;
}
