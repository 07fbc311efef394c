/* One-line log records on stderr, as text or JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include "log.h"

static enum log_level	log_min = LOG_INFO;
static int		log_json;
static pthread_mutex_t	log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_setup(enum log_level min, int json)
{
	log_min = min;
	log_json = json;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names);
	    i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

static void
format_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void
log_json_string(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

/* Text records replace control characters so that one record stays one
 * line. */
static void
put_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
}

static void
write_json(FILE *f, const char *when, enum log_level level,
    const struct log_origin *o, const char *msg)
{
	fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\"", when,
	    level_names[level]);
	if (o != NULL && o->rule != NULL) {
		fputs(",\"rule\":\"", f);
		log_json_string(f, o->rule);
		fputc('"', f);
	}
	if (o != NULL && o->topic != NULL) {
		fputs(",\"topic\":\"", f);
		log_json_string(f, o->topic);
		fputc('"', f);
	}
	if (o != NULL && o->http)
		fprintf(f, ",\"status\":%ld,\"duration_ms\":%.1f", o->status,
		    o->ms);
	fputs(",\"message\":\"", f);
	log_json_string(f, msg);
	fputs("\"}\n", f);
}

static void
write_text(FILE *f, const char *when, enum log_level level,
    const struct log_origin *o, const char *msg)
{
	fprintf(f, "%s %-5s ", when, level_names[level]);
	if (o != NULL && o->rule != NULL) {
		fputs("rule=", f);
		put_text(f, o->rule);
		fputc(' ', f);
	}
	if (o != NULL && o->topic != NULL) {
		fputs("topic=", f);
		put_text(f, o->topic);
		fputc(' ', f);
	}
	put_text(f, msg);
	fputc('\n', f);
}

void
log_at(enum log_level level, const struct log_origin *origin,
    const char *fmt, ...)
{
	char when[40], msg[2048];
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_time(when, sizeof(when));

	pthread_mutex_lock(&log_lock);
	if (log_json)
		write_json(stderr, when, level, origin, msg);
	else
		write_text(stderr, when, level, origin, msg);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

const char *
log_safe_url(const char *url, char *buf, size_t size)
{
	const char *scheme_end, *host, *at, *slash;
	size_t n;

	scheme_end = strstr(url, "://");
	host = scheme_end != NULL ? scheme_end + 3 : url;
	slash = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(slash - host));

	n = (size_t)(host - url);
	snprintf(buf, size, "%.*s%.*s", (int)n, url,
	    (int)strcspn(at != NULL ? at + 1 : host, "?#"),
	    at != NULL ? at + 1 : host);
	return buf;
}
