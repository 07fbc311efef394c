/* Prometheus metrics and /healthz, served by libmicrohttpd's thread. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/*
 * Label values are rule names and subscription filters, a few dozen.
 * Past this many per metric, new ones are counted under "other", so
 * that nothing can grow the store without bound.
 */
#define SERIES_MAX	1000
#define OVERFLOW_LABEL	"other"

#define STALL_SECONDS	15	/* heartbeat age at which /healthz fails */
#define TEXT_START	16384	/* first allocation for the exposition */

#define METRICS_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define PLAIN_TYPE	"text/plain; charset=utf-8"
#define REPLACEMENT	"\xef\xbf\xbd"	/* U+FFFD, for bytes not UTF-8 */

/* Bucket upper bounds in seconds: from a handler that only looks at a
 * message to an HTTP request that runs into its timeout. */
static const double bucket_bounds[] = {
	0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	5, 10, 30
};
#define NBUCKETS	(sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

/* Status classes of mqttrules_http_requests_total, in the order of the
 * hundreds they stand for, so that request_class can compute them. */
enum request_class {
	C_2XX,
	C_3XX,
	C_4XX,
	C_5XX,
	C_ERROR,
	C_LAST
};

static const char *const class_names[C_LAST] = {
	"2xx", "3xx", "4xx", "5xx", "error"
};

#define NCOUNTS	(NBUCKETS + 1 > C_LAST ? NBUCKETS + 1 : C_LAST)

/*
 * One label value's numbers. A counter keeps its value in sum. A
 * histogram keeps its sum, and in counts the observations of each
 * bucket alone (cumulated when rendered), the last past every bound.
 * The HTTP requests metric keeps one count per status class.
 */
struct series {
	char		*label;
	double		 sum;
	uint64_t	 counts[NCOUNTS];
};

/* The series of one metric, sorted by label so that lookups can
 * bisect and the exposition comes out in a stable order. */
struct family {
	struct series	*series;
	size_t		 n;
	size_t		 cap;
};

struct desc {
	const char	*name;
	const char	*label;		/* the label's name, or NULL */
	const char	*help;
};

static const struct desc counter_desc[M_COUNTER_LAST] = {
	[M_MESSAGES_RECEIVED] = { "mqttrules_messages_received_total",
	    "filter", "MQTT messages received, by subscription filter." },
	[M_EVENTS_HANDLED] = { "mqttrules_events_handled_total", "rule",
	    "Events a rule's handler finished without error." },
	[M_EVENTS_FAILED] = { "mqttrules_events_failed_total", "rule",
	    "Events whose handler failed." },
	[M_EVENTS_DEAD_LETTERED] = { "mqttrules_events_dead_lettered_total",
	    "rule", "Events given up on and kept as dead letters." },
	[M_HTTP_RETRIES] = { "mqttrules_http_retries_total", "rule",
	    "HTTP requests of a rule sent again after a failure." },
	[M_MQTT_RECONNECTS] = { "mqttrules_mqtt_reconnects_total", NULL,
	    "Broker sessions re-established after a loss." },
};

/* "counter" may not appear in a metric name (promtool's lint), hence
 * mqttrules_counters_keys. */
static const struct desc gauge_desc[M_GAUGE_LAST] = {
	[M_MQTT_CONNECTED] = { "mqttrules_mqtt_connected", NULL,
	    "1 while the broker session is up, else 0." },
	[M_MQTT_SUBSCRIPTIONS] = { "mqttrules_mqtt_subscriptions", NULL,
	    "Subscription filters held on the broker." },
	[M_QUEUE_DEPTH] = { "mqttrules_queue_depth", NULL,
	    "Events waiting for their handler." },
	[M_EVENTS_IN_FLIGHT] = { "mqttrules_events_in_flight", NULL,
	    "Events whose handler started and has not finished." },
	[M_JOURNAL_BYTES] = { "mqttrules_journal_bytes", NULL,
	    "Size of the journal file." },
	[M_JOURNAL_OLDEST_SECONDS] = {
	    "mqttrules_journal_oldest_unfinished_age_seconds", NULL,
	    "Age of the oldest unfinished event in the journal, 0 if none." },
	[M_COUNTER_KEYS] = { "mqttrules_counters_keys", NULL,
	    "Keys live in the counters shared by the rules." },
};

static const struct desc histogram_desc[M_HISTOGRAM_LAST] = {
	[M_HANDLER_SECONDS] = { "mqttrules_handler_duration_seconds",
	    "rule", "Time a rule's handler took for one event." },
	[M_HTTP_SECONDS] = { "mqttrules_http_request_duration_seconds",
	    "rule", "Time a rule's HTTP requests took." },
};

static const struct desc requests_desc = {
	"mqttrules_http_requests_total", "rule",
	"HTTP requests of a rule, by status class (error: no response)."
};

/* Everything the update calls and the server thread share. */
static struct {
	pthread_mutex_t	 lock;
	struct family	 counters[M_COUNTER_LAST];
	struct family	 histograms[M_HISTOGRAM_LAST];
	struct family	 requests;
	double		 gauges[M_GAUGE_LAST];
	double		 start_time;	/* wall clock, at first use */
	double		 heartbeat;
	bool		 beating;	/* heartbeat has been called */
} store = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Started and stopped by the main thread only. */
static struct MHD_Daemon	*server;

/* The exposition as it is built; failed once an allocation failed. */
struct text {
	char	*p;
	size_t	 len;
	size_t	 cap;
	bool	 failed;
};

/* Takes the store's lock; the first caller also fixes the start time. */
static void
store_lock(void)
{
	struct timespec ts;

	pthread_mutex_lock(&store.lock);
	if (store.start_time == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		store.start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	}
}

static void
store_unlock(void)
{
	pthread_mutex_unlock(&store.lock);
}

/* The index of label in f, or where it belongs when not found. */
static size_t
series_index(const struct family *f, const char *label, bool *found)
{
	size_t lo = 0, hi = f->n, mid;
	int cmp;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcmp(label, f->series[mid].label);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Inserts a zeroed series for label at index i; NULL when out of
 * memory. */
static struct series *
series_insert(struct family *f, size_t i, const char *label)
{
	struct series *grown;
	char *copy;
	size_t cap;

	if (f->n == f->cap) {
		cap = f->cap == 0 ? 8 : f->cap * 2;
		if ((grown = realloc(f->series, cap * sizeof(*grown))) == NULL)
			return NULL;
		f->series = grown;
		f->cap = cap;
	}
	if ((copy = strdup(label)) == NULL)
		return NULL;

	memmove(&f->series[i + 1], &f->series[i],
	    (f->n - i) * sizeof(f->series[0]));
	memset(&f->series[i], 0, sizeof(f->series[i]));
	f->series[i].label = copy;
	f->n++;
	return &f->series[i];
}

/* The series of label (NULL: the metric has no label), created on first
 * use. Called with the lock held; NULL when out of memory. */
static struct series *
series_get(struct family *f, const char *label)
{
	size_t i;
	bool found;

	if (label == NULL)
		label = "";
	i = series_index(f, label, &found);
	if (found)
		return &f->series[i];

	if (f->n >= SERIES_MAX) {
		label = OVERFLOW_LABEL;
		i = series_index(f, label, &found);
		if (found)
			return &f->series[i];
	}
	return series_insert(f, i, label);
}

void
metrics_add(enum metrics_counter c, const char *label, double n)
{
	struct series *s;

	/* A counter that went down would read as a restart. */
	if ((unsigned int)c >= M_COUNTER_LAST || !(n >= 0) || isinf(n))
		return;
	if (counter_desc[c].label == NULL)
		label = NULL;

	store_lock();
	if ((s = series_get(&store.counters[c], label)) != NULL)
		s->sum += n;
	store_unlock();
}

void
metrics_set(enum metrics_gauge g, double value)
{
	if ((unsigned int)g >= M_GAUGE_LAST)
		return;
	store_lock();
	store.gauges[g] = value;
	store_unlock();
}

void
metrics_observe(enum metrics_histogram h, const char *label,
    double seconds)
{
	struct series *s;
	size_t b;

	if ((unsigned int)h >= M_HISTOGRAM_LAST || !isfinite(seconds))
		return;
	/* Below zero only when the clock stepped back. */
	if (seconds < 0)
		seconds = 0;
	for (b = 0; b < NBUCKETS && seconds > bucket_bounds[b]; b++)
		continue;

	store_lock();
	if ((s = series_get(&store.histograms[h], label)) != NULL) {
		s->counts[b]++;
		s->sum += seconds;
	}
	store_unlock();
}

static enum request_class
request_class(long status)
{
	if (status >= 200 && status <= 599)
		return (enum request_class)(status / 100 - 2);
	return C_ERROR;
}

void
metrics_http_request(const char *rule, long status)
{
	struct series *s;

	store_lock();
	if ((s = series_get(&store.requests, rule)) != NULL)
		s->counts[request_class(status)]++;
	store_unlock();
}

void
metrics_heartbeat(double now)
{
	store_lock();
	store.heartbeat = now;
	store.beating = true;
	store_unlock();
}

/* A loop that stopped turning makes the connected gauge stale too, so
 * it is the reason given first. */
int
metrics_health(double now, char *reason, size_t size)
{
	double age, connected;
	bool beating;

	store_lock();
	beating = store.beating;
	age = now - store.heartbeat;
	connected = store.gauges[M_MQTT_CONNECTED];
	store_unlock();

	if (!beating)
		snprintf(reason, size, "main loop not started\n");
	else if (age > STALL_SECONDS)
		snprintf(reason, size, "main loop stalled for %.0f s\n",
		    floor(age));
	else if (connected != 1)
		snprintf(reason, size, "mqtt disconnected\n");
	else {
		snprintf(reason, size, "ok\n");
		return 0;
	}
	return -1;
}

/* Makes room for n more bytes and a NUL. */
static int
text_reserve(struct text *t, size_t n)
{
	char *grown;
	size_t cap;

	if (t->failed)
		return -1;
	if (t->cap - t->len > n)
		return 0;
	for (cap = t->cap; cap - t->len <= n; cap *= 2)
		continue;
	if ((grown = realloc(t->p, cap)) == NULL) {
		t->failed = true;
		return -1;
	}
	t->p = grown;
	t->cap = cap;
	return 0;
}

static void
text_append(struct text *t, const char *s, size_t n)
{
	if (text_reserve(t, n) == -1)
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void
text_puts(struct text *t, const char *s)
{
	text_append(t, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		t->failed = true;
	if (n < 0 || text_reserve(t, (size_t)n) == -1)
		return;

	va_start(ap, fmt);
	vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* The length of the well-formed UTF-8 sequence at p, or 0: Prometheus
 * refuses a whole scrape over one label value that is not UTF-8. */
static size_t
utf8_length(const unsigned char *p)
{
	uint32_t cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}

	/* Overlong forms, surrogates and code points past Unicode. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static void
put_label_value(struct text *t, const char *value)
{
	const unsigned char *p;
	size_t n;

	for (p = (const unsigned char *)value; *p != '\0'; p += n) {
		n = 1;
		if (*p == '\\')
			text_append(t, "\\\\", 2);
		else if (*p == '"')
			text_append(t, "\\\"", 2);
		else if (*p == '\n')
			text_append(t, "\\n", 2);
		else if (*p < 0x80)
			text_append(t, (const char *)p, 1);
		else if ((n = utf8_length(p)) > 0)
			text_append(t, (const char *)p, n);
		else {
			text_puts(t, REPLACEMENT);
			n = 1;
		}
	}
}

/* The shortest text that reads back as v. */
static void
put_value(struct text *t, double v)
{
	char s[32];

	if (isnan(v))
		snprintf(s, sizeof(s), "NaN");
	else if (isinf(v))
		snprintf(s, sizeof(s), "%sInf", v > 0 ? "+" : "-");
	else {
		snprintf(s, sizeof(s), "%.15g", v);
		if (strtod(s, NULL) != v)
			snprintf(s, sizeof(s), "%.17g", v);
	}
	text_puts(t, s);
}

static void
put_header(struct text *t, const struct desc *d, const char *type)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help,
	    d->name, type);
}

/*
 * One sample line. label is the metric's own label name (NULL if it
 * has none) and value its value; extra, when not NULL, is a second
 * label pair ready to print, like le="0.5".
 */
static void
put_sample(struct text *t, const char *name, const char *label,
    const char *value, const char *extra, double v)
{
	text_puts(t, name);
	if (label != NULL) {
		text_printf(t, "{%s=\"", label);
		put_label_value(t, value);
		text_puts(t, extra != NULL ? "\"," : "\"}");
	} else if (extra != NULL)
		text_puts(t, "{");
	if (extra != NULL)
		text_printf(t, "%s}", extra);
	text_puts(t, " ");
	put_value(t, v);
	text_puts(t, "\n");
}

static void
put_counters(struct text *t)
{
	const struct desc *d;
	const struct family *f;
	size_t c, i;

	for (c = 0; c < M_COUNTER_LAST; c++) {
		d = &counter_desc[c];
		f = &store.counters[c];
		put_header(t, d, "counter");
		if (d->label == NULL) {
			put_sample(t, d->name, NULL, NULL, NULL,
			    f->n > 0 ? f->series[0].sum : 0);
			continue;
		}
		for (i = 0; i < f->n; i++)
			put_sample(t, d->name, d->label, f->series[i].label,
			    NULL, f->series[i].sum);
	}
}

/* Every class of a rule once it made a request: a class that stays at
 * zero then still shows in ratios instead of being absent. */
static void
put_requests(struct text *t)
{
	const struct desc *d = &requests_desc;
	const struct series *s;
	char class[32];
	size_t i, c;

	put_header(t, d, "counter");
	for (i = 0; i < store.requests.n; i++) {
		s = &store.requests.series[i];
		for (c = 0; c < C_LAST; c++) {
			snprintf(class, sizeof(class), "class=\"%s\"",
			    class_names[c]);
			put_sample(t, d->name, d->label, s->label, class,
			    (double)s->counts[c]);
		}
	}
}

static void
put_histogram(struct text *t, const struct desc *d, const struct series *s)
{
	char name[128], le[32];
	uint64_t total = 0;
	size_t b;

	snprintf(name, sizeof(name), "%s_bucket", d->name);
	for (b = 0; b < NBUCKETS; b++) {
		total += s->counts[b];
		snprintf(le, sizeof(le), "le=\"%g\"", bucket_bounds[b]);
		put_sample(t, name, d->label, s->label, le, (double)total);
	}
	total += s->counts[NBUCKETS];
	put_sample(t, name, d->label, s->label, "le=\"+Inf\"", (double)total);

	snprintf(name, sizeof(name), "%s_sum", d->name);
	put_sample(t, name, d->label, s->label, NULL, s->sum);
	snprintf(name, sizeof(name), "%s_count", d->name);
	put_sample(t, name, d->label, s->label, NULL, (double)total);
}

static void
put_histograms(struct text *t)
{
	const struct family *f;
	size_t h, i;

	for (h = 0; h < M_HISTOGRAM_LAST; h++) {
		f = &store.histograms[h];
		put_header(t, &histogram_desc[h], "histogram");
		for (i = 0; i < f->n; i++)
			put_histogram(t, &histogram_desc[h], &f->series[i]);
	}
}

static void
put_gauges(struct text *t)
{
	static const struct desc build = { "mqttrules_build_info", NULL,
	    "The running build; the value is always 1." };
	static const struct desc start = { "process_start_time_seconds",
	    NULL, "Start time of the process since the epoch in seconds." };
	size_t g;

	for (g = 0; g < M_GAUGE_LAST; g++) {
		put_header(t, &gauge_desc[g], "gauge");
		put_sample(t, gauge_desc[g].name, NULL, NULL, NULL,
		    store.gauges[g]);
	}
	put_header(t, &build, "gauge");
	put_sample(t, build.name, "version", MQTTRULES_VERSION, NULL, 1);
	put_header(t, &start, "gauge");
	put_sample(t, start.name, NULL, NULL, NULL, store.start_time);
}

char *
metrics_render(void)
{
	struct text t = { 0 };

	if ((t.p = malloc(TEXT_START)) == NULL)
		return NULL;
	t.cap = TEXT_START;
	t.p[0] = '\0';

	store_lock();
	put_counters(&t);
	put_requests(&t);
	put_histograms(&t);
	put_gauges(&t);
	store_unlock();

	if (t.failed) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned int status, const char *type,
    const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    type) == MHD_NO)
		goto done;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
	    "GET, HEAD") == MHD_NO)
		goto done;
	ret = MHD_queue_response(conn, status, resp);
done:
	MHD_destroy_response(resp);
	return ret;
}

/* Runs on libmicrohttpd's thread: it may read the store, nothing else
 * of the daemon. A request without a body needs only the first call. */
static enum MHD_Result
serve(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **req_cls)
{
	enum MHD_Result ret;
	unsigned int status;
	char reason[64], *text;
	bool metrics;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)req_cls;
	metrics = strcmp(url, "/metrics") == 0;
	if (!metrics && strcmp(url, "/healthz") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, PLAIN_TYPE,
		    "not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, PLAIN_TYPE,
		    "method not allowed\n");

	if (!metrics) {
		status = metrics_health(clock_now(), reason,
		    sizeof(reason)) == 0 ? MHD_HTTP_OK :
		    MHD_HTTP_SERVICE_UNAVAILABLE;
		return reply(conn, status, PLAIN_TYPE, reason);
	}
	if ((text = metrics_render()) == NULL)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, PLAIN_TYPE,
		    "out of memory\n");
	ret = reply(conn, MHD_HTTP_OK, METRICS_TYPE, text);
	free(text);
	return ret;
}

/* libmicrohttpd's own messages are mostly about clients that went away;
 * the one that matters at start reaches the caller through err. */
static void
log_server(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("metrics: %s", msg);
}

/* A port of 1 to 5 digits, 0 to 65535; -1 otherwise. */
static long
parse_port(const char *s)
{
	size_t n = strspn(s, "0123456789");
	long port;

	if (n == 0 || n > 5 || s[n] != '\0')
		return -1;
	port = strtol(s, NULL, 10);
	return port <= 65535 ? port : -1;
}

/* Fills sa from "a.b.c.d:port" or "[v6]:port"; -1 for anything else,
 * host names included. */
static int
parse_listen(const char *listen, struct sockaddr_storage *sa, bool *v6)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	char host[INET6_ADDRSTRLEN];
	const char *start = listen, *end;
	long port;

	*v6 = listen[0] == '[';
	if (*v6) {
		start++;
		if ((end = strchr(start, ']')) == NULL || end[1] != ':')
			return -1;
	} else if ((end = strrchr(start, ':')) == NULL)
		return -1;
	if ((size_t)(end - start) >= sizeof(host) ||
	    (port = parse_port(end + (*v6 ? 2 : 1))) == -1)
		return -1;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';

	memset(sa, 0, sizeof(*sa));
	if (*v6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? 0 : -1;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
}

int
metrics_start(const char *listen, char *err, size_t size)
{
	struct sockaddr_storage sa;
	unsigned int flags;
	bool v6;

	if (listen == NULL || listen[0] == '\0')
		return 0;
	if (server != NULL) {
		snprintf(err, size, "[daemon] metrics: already serving");
		return -1;
	}
	if (parse_listen(listen, &sa, &v6) == -1) {
		snprintf(err, size, "[daemon] metrics: \"%s\" is not "
		    "address:port (IPv4, or IPv6 in brackets)", listen);
		return -1;
	}

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_AUTO | (v6 ? MHD_USE_IPv6 : 0);
	errno = 0;
	server = MHD_start_daemon(flags, 0, NULL, NULL, serve, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)5,
	    MHD_OPTION_EXTERNAL_LOGGER, log_server, NULL,
	    MHD_OPTION_END);
	if (server == NULL) {
		/* libmicrohttpd 0.9.75 leaves the errno of bind or listen. */
		snprintf(err, size, "[daemon] metrics: cannot listen on %s: %s",
		    listen, errno != 0 ? strerror(errno) :
		    "libmicrohttpd failed to start");
		return -1;
	}

	/* Fixes process_start_time_seconds if no update call did yet. */
	store_lock();
	store_unlock();
	log_info("metrics: serving /metrics and /healthz on %s", listen);
	return 0;
}

void
metrics_stop(void)
{
	if (server == NULL)
		return;
	MHD_stop_daemon(server);
	server = NULL;
}

int
metrics_port(void)
{
	const union MHD_DaemonInfo *info;

	if (server == NULL)
		return 0;
	info = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT);
	return info != NULL ? info->port : 0;
}
