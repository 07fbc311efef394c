/*
 * Unit tests for metrics.c: rendering, histogram buckets, the series
 * cap, status classes, health, and the server over a real socket. With
 * --render it prints a sample exposition instead, for promtool.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "metrics.h"

#define SERIES_MAX	1000	/* as in metrics.c */
#define REPLY_MAX	65536

struct reply {
	int	 status;
	char	 raw[REPLY_MAX];
	char	*body;
};

/* Whether text holds line as one whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n'))
			return 1;
	}
	return 0;
}

static int
count_prefix(const char *text, const char *prefix)
{
	const char *p = text;
	int n = 0;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return n;
}

static void
assert_rendered(const char *line)
{
	char *text = metrics_render();

	assert_non_null(text);
	if (!has_line(text, line))
		fail_msg("no line \"%s\" in:\n%s", line, text);
	free(text);
}

static void
assert_not_rendered(const char *prefix)
{
	char *text = metrics_render();

	assert_non_null(text);
	assert_int_equal(count_prefix(text, prefix), 0);
	free(text);
}

static void
test_counter_labels(void **state)
{
	(void)state;
	metrics_add(M_EVENTS_HANDLED, "lights", 2);
	metrics_add(M_EVENTS_HANDLED, "lights", 1.5);
	metrics_add(M_EVENTS_HANDLED, "q\"b\\s\nn", 1);
	metrics_add(M_EVENTS_HANDLED, "caf\xc3\xa9", 4);

	assert_rendered("# HELP mqttrules_events_handled_total "
	    "Events a rule's handler finished without error.");
	assert_rendered("# TYPE mqttrules_events_handled_total counter");
	assert_rendered("mqttrules_events_handled_total{rule=\"lights\"} 3.5");
	assert_rendered("mqttrules_events_handled_total"
	    "{rule=\"q\\\"b\\\\s\\nn\"} 1");
	assert_rendered("mqttrules_events_handled_total"
	    "{rule=\"caf\xc3\xa9\"} 4");
}

static void
test_counter_sorted(void **state)
{
	char *text, *a, *b, *c;

	(void)state;
	metrics_add(M_EVENTS_DEAD_LETTERED, "zz", 1);
	metrics_add(M_EVENTS_DEAD_LETTERED, "aa", 1);
	metrics_add(M_EVENTS_DEAD_LETTERED, "mm", 1);
	text = metrics_render();
	assert_non_null(text);
	a = strstr(text, "mqttrules_events_dead_lettered_total{rule=\"aa\"}");
	b = strstr(text, "mqttrules_events_dead_lettered_total{rule=\"mm\"}");
	c = strstr(text, "mqttrules_events_dead_lettered_total{rule=\"zz\"}");
	assert_true(a != NULL && b != NULL && c != NULL);
	assert_true(a < b && b < c);
	free(text);
}

/* Invalid UTF-8 would make Prometheus reject the whole scrape. */
static void
test_label_not_utf8(void **state)
{
	(void)state;
	metrics_add(M_MESSAGES_RECEIVED, "bad\xff/x", 1);
	metrics_add(M_MESSAGES_RECEIVED, "over\xc0\xaf", 1);
	metrics_add(M_MESSAGES_RECEIVED, "cut\xe2\x82", 1);
	metrics_add(M_MESSAGES_RECEIVED, "euro\xe2\x82\xac/#", 1);

	assert_rendered("mqttrules_messages_received_total"
	    "{filter=\"bad\xef\xbf\xbd/x\"} 1");
	assert_rendered("mqttrules_messages_received_total"
	    "{filter=\"over\xef\xbf\xbd\xef\xbf\xbd\"} 1");
	assert_rendered("mqttrules_messages_received_total"
	    "{filter=\"cut\xef\xbf\xbd\xef\xbf\xbd\"} 1");
	assert_rendered("mqttrules_messages_received_total"
	    "{filter=\"euro\xe2\x82\xac/#\"} 1");
}

static void
test_counter_rejects(void **state)
{
	(void)state;
	metrics_add(M_EVENTS_FAILED, "neg", 1);
	metrics_add(M_EVENTS_FAILED, "neg", -5);
	metrics_add(M_EVENTS_FAILED, "neg", NAN);
	metrics_add(M_EVENTS_FAILED, "neg", INFINITY);
	metrics_add(M_EVENTS_FAILED, NULL, 2);
	assert_rendered("mqttrules_events_failed_total{rule=\"neg\"} 1");
	assert_rendered("mqttrules_events_failed_total{rule=\"\"} 2");

	/* An unlabelled counter shows 0 before use and ignores labels. */
	assert_rendered("mqttrules_mqtt_reconnects_total 0");
	metrics_add(M_MQTT_RECONNECTS, "ignored", 1);
	metrics_add(M_MQTT_RECONNECTS, NULL, 2);
	assert_rendered("mqttrules_mqtt_reconnects_total 3");
	assert_not_rendered("mqttrules_mqtt_reconnects_total{");
}

static void
test_gauges(void **state)
{
	char *text, *p, version[64];
	double start;

	(void)state;
	assert_rendered("# TYPE mqttrules_events_in_flight gauge");
	assert_rendered("mqttrules_events_in_flight 0");
	metrics_set(M_QUEUE_DEPTH, 7);
	metrics_set(M_JOURNAL_BYTES, 1.5e9);
	metrics_set(M_JOURNAL_OLDEST_SECONDS, 0.1);
	metrics_set(M_COUNTER_KEYS, 12);
	assert_rendered("mqttrules_queue_depth 7");
	assert_rendered("mqttrules_journal_bytes 1500000000");
	assert_rendered("mqttrules_journal_oldest_unfinished_age_seconds 0.1");
	assert_rendered("mqttrules_counters_keys 12");
	metrics_set(M_QUEUE_DEPTH, 3);
	assert_rendered("mqttrules_queue_depth 3");

	snprintf(version, sizeof(version),
	    "mqttrules_build_info{version=\"%s\"} 1", MQTTRULES_VERSION);
	assert_rendered(version);

	text = metrics_render();
	assert_non_null(text);
	p = strstr(text, "\nprocess_start_time_seconds ");
	assert_non_null(p);
	start = strtod(p + strlen("\nprocess_start_time_seconds "), NULL);
	assert_true(fabs(start - (double)time(NULL)) < 60);
	free(text);
}

/* le is "less or equal": a value on a bound is in that bound's bucket. */
static void
test_histogram_edges(void **state)
{
	static const char *const lines[] = {
		"{rule=\"edge\",le=\"0.0005\"} 3",
		"{rule=\"edge\",le=\"0.001\"} 5",
		"{rule=\"edge\",le=\"0.005\"} 5",
		"{rule=\"edge\",le=\"10\"} 5",
		"{rule=\"edge\",le=\"30\"} 6",
		"{rule=\"edge\",le=\"+Inf\"} 7",
	};
	char line[128], *text, *p;
	size_t i;

	(void)state;
	metrics_observe(M_HANDLER_SECONDS, "edge", 0.0005);
	metrics_observe(M_HANDLER_SECONDS, "edge", 0);
	metrics_observe(M_HANDLER_SECONDS, "edge", -1);	/* as 0 */
	metrics_observe(M_HANDLER_SECONDS, "edge", 0.00051);
	metrics_observe(M_HANDLER_SECONDS, "edge", 0.001);
	metrics_observe(M_HANDLER_SECONDS, "edge", 30);
	metrics_observe(M_HANDLER_SECONDS, "edge", 30.5);
	metrics_observe(M_HANDLER_SECONDS, "edge", NAN);
	metrics_observe(M_HANDLER_SECONDS, "edge", INFINITY);

	assert_rendered("# TYPE mqttrules_handler_duration_seconds histogram");
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		snprintf(line, sizeof(line),
		    "mqttrules_handler_duration_seconds_bucket%s", lines[i]);
		assert_rendered(line);
	}
	assert_rendered("mqttrules_handler_duration_seconds_count"
	    "{rule=\"edge\"} 7");

	text = metrics_render();
	assert_non_null(text);
	p = strstr(text, "mqttrules_handler_duration_seconds_sum"
	    "{rule=\"edge\"} ");
	assert_non_null(p);
	assert_true(fabs(strtod(strchr(p, ' ') + 1, NULL) - 60.50201) < 1e-9);
	free(text);
}

/* Values a binary fraction holds exactly, so the sum prints exactly. */
static void
test_histogram_buckets(void **state)
{
	static const char *const bounds[] = {
		"0.0005", "0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
		"0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"
	};
	static const int counts[] = {
		0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 5, 5, 5, 5, 6
	};
	char line[128];
	size_t i;

	(void)state;
	metrics_observe(M_HTTP_SECONDS, "hook", 0.25);
	metrics_observe(M_HTTP_SECONDS, "hook", 0.5);
	metrics_observe(M_HTTP_SECONDS, "hook", 0.75);
	metrics_observe(M_HTTP_SECONDS, "hook", 1);
	metrics_observe(M_HTTP_SECONDS, "hook", 2.5);
	metrics_observe(M_HTTP_SECONDS, "hook", 64);

	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		snprintf(line, sizeof(line),
		    "mqttrules_http_request_duration_seconds_bucket"
		    "{rule=\"hook\",le=\"%s\"} %d", bounds[i], counts[i]);
		assert_rendered(line);
	}
	assert_rendered("mqttrules_http_request_duration_seconds_sum"
	    "{rule=\"hook\"} 69");
	assert_rendered("mqttrules_http_request_duration_seconds_count"
	    "{rule=\"hook\"} 6");
}

static void
test_http_request_classes(void **state)
{
	static const long statuses[] = {
		200, 204, 299, 301, 404, 500, 503, 599, 0, -1, 199, 600
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		metrics_http_request("api", statuses[i]);
	metrics_http_request("other api", 201);

	assert_rendered("# TYPE mqttrules_http_requests_total counter");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"api\",class=\"2xx\"} 3");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"api\",class=\"3xx\"} 1");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"api\",class=\"4xx\"} 1");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"api\",class=\"5xx\"} 3");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"api\",class=\"error\"} 4");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"other api\",class=\"2xx\"} 1");
	assert_rendered("mqttrules_http_requests_total"
	    "{rule=\"other api\",class=\"5xx\"} 0");
}

/* Past the cap, new label values share "other"; known ones go on. */
static void
test_series_cap(void **state)
{
	char label[32], *text;
	int i;

	(void)state;
	for (i = 0; i < SERIES_MAX + 5; i++) {
		snprintf(label, sizeof(label), "r%04d", i);
		metrics_add(M_HTTP_RETRIES, label, 1);
	}
	metrics_add(M_HTTP_RETRIES, "r0005", 1);
	metrics_add(M_HTTP_RETRIES, "r1002", 1);

	text = metrics_render();
	assert_non_null(text);
	assert_int_equal(count_prefix(text, "mqttrules_http_retries_total{"),
	    SERIES_MAX + 1);
	assert_true(has_line(text,
	    "mqttrules_http_retries_total{rule=\"other\"} 6"));
	assert_true(has_line(text,
	    "mqttrules_http_retries_total{rule=\"r0005\"} 2"));
	assert_true(has_line(text,
	    "mqttrules_http_retries_total{rule=\"r0999\"} 1"));
	assert_int_equal(count_prefix(text,
	    "mqttrules_http_retries_total{rule=\"r1000\"}"), 0);
	free(text);
}

static void
assert_health(double now, int rc, const char *reason)
{
	char buf[64];

	assert_int_equal(metrics_health(now, buf, sizeof(buf)), rc);
	assert_string_equal(buf, reason);
}

static void
test_health(void **state)
{
	(void)state;
	metrics_set(M_MQTT_CONNECTED, 1);
	assert_health(1000, -1, "main loop not started\n");

	metrics_heartbeat(1000);
	assert_health(1000, 0, "ok\n");
	assert_health(1015, 0, "ok\n");
	assert_health(990, 0, "ok\n");
	assert_health(1015.5, -1, "main loop stalled for 15 s\n");
	assert_health(1042.9, -1, "main loop stalled for 42 s\n");

	metrics_set(M_MQTT_CONNECTED, 0);
	assert_health(1010, -1, "mqtt disconnected\n");
	assert_health(1100, -1, "main loop stalled for 100 s\n");
	metrics_heartbeat(1100);
	assert_health(1100, -1, "mqtt disconnected\n");
	metrics_set(M_MQTT_CONNECTED, 1);
	assert_health(1100, 0, "ok\n");
}

static int
connect_port(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = { .tv_sec = 5 };
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One HTTP/1.0 exchange, read until the server closes. */
static void
fetch(int port, const char *method, const char *path, struct reply *r)
{
	char req[256];
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = connect_port(port);
	assert_true(fd != -1);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "Content-Length: 0\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (len < sizeof(r->raw) - 1 &&
	    (n = read(fd, r->raw + len, sizeof(r->raw) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	r->raw[len] = '\0';

	assert_true(sscanf(r->raw, "HTTP/1.%*d %d", &r->status) == 1);
	r->body = strstr(r->raw, "\r\n\r\n");
	assert_non_null(r->body);
	r->body += 4;
}

static void
test_server(void **state)
{
	static struct reply r;
	char err[256];
	int port;

	(void)state;
	assert_int_equal(metrics_start("127.0.0.1:0", err, sizeof(err)), 0);
	port = metrics_port();
	assert_true(port > 0);
	metrics_set(M_MQTT_CONNECTED, 1);
	metrics_heartbeat(clock_now());

	fetch(port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.raw, "\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n"));
	assert_true(has_line(r.body, "mqttrules_mqtt_connected 1"));
	assert_non_null(strstr(r.body, "mqttrules_build_info{version="));

	fetch(port, "HEAD", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");

	fetch(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	metrics_set(M_MQTT_CONNECTED, 0);
	fetch(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "mqtt disconnected\n");

	fetch(port, "GET", "/metrics/", &r);
	assert_int_equal(r.status, 404);
	fetch(port, "GET", "/", &r);
	assert_int_equal(r.status, 404);
	fetch(port, "POST", "/metrics", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.raw, "\r\nAllow: GET, HEAD\r\n"));

	assert_int_equal(metrics_start("127.0.0.1:0", err, sizeof(err)), -1);
	metrics_stop();
	assert_int_equal(metrics_port(), 0);
	assert_int_equal(connect_port(port), -1);
	metrics_stop();
}

static void
test_start_errors(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:80x", "localhost:9883", "::1:9883", "[::1]9883",
		"[::1:9883", "[127.0.0.1]:9883", "1.2.3:9883", ":9883",
		"127.0.0.1:123456",
	};
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char err[256], want[256];
	size_t i;
	int fd;

	(void)state;
	assert_int_equal(metrics_start("", err, sizeof(err)), 0);
	assert_int_equal(metrics_port(), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (metrics_start(bad[i], err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err, "[daemon] metrics: \""));
		assert_non_null(strstr(err, bad[i]));
	}

	/* A port some other socket holds. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(metrics_start(want, err, sizeof(err)), -1);
	close(fd);
	snprintf(want, sizeof(want), "[daemon] metrics: cannot listen on "
	    "127.0.0.1:%d: Address already in use", ntohs(sa.sin_port));
	assert_string_equal(err, want);
	assert_int_equal(metrics_port(), 0);
}

/* IPv6 loopback, where the machine has it. */
static void
test_start_ipv6(void **state)
{
	char err[256];

	(void)state;
	if (metrics_start("[::1]:0", err, sizeof(err)) == -1) {
		if (strstr(err, "cannot listen") == NULL)
			fail_msg("%s", err);
		skip();
	}
	assert_true(metrics_port() > 0);
	metrics_stop();
}

/* Some of every kind of sample, printed for promtool. */
static int
render_sample(void)
{
	char *text;

	metrics_add(M_MESSAGES_RECEIVED, "home/+/temp", 3);
	metrics_add(M_MESSAGES_RECEIVED, "bad\xff\"\\\n", 1);
	metrics_add(M_EVENTS_HANDLED, "lights", 3);
	metrics_add(M_EVENTS_FAILED, "lights", 1);
	metrics_add(M_EVENTS_DEAD_LETTERED, "lights", 1);
	metrics_add(M_HTTP_RETRIES, "notify", 2);
	metrics_add(M_MQTT_RECONNECTS, NULL, 1);
	metrics_set(M_MQTT_CONNECTED, 1);
	metrics_set(M_QUEUE_DEPTH, 2);
	metrics_set(M_JOURNAL_OLDEST_SECONDS, 0.25);
	metrics_observe(M_HANDLER_SECONDS, "lights", 0.0042);
	metrics_observe(M_HTTP_SECONDS, "notify", 0.3);
	metrics_observe(M_HTTP_SECONDS, "notify", 45);
	metrics_http_request("notify", 200);
	metrics_http_request("notify", 0);
	if ((text = metrics_render()) == NULL)
		return 1;
	fputs(text, stdout);
	free(text);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_labels),
		cmocka_unit_test(test_counter_sorted),
		cmocka_unit_test(test_label_not_utf8),
		cmocka_unit_test(test_counter_rejects),
		cmocka_unit_test(test_gauges),
		cmocka_unit_test(test_histogram_edges),
		cmocka_unit_test(test_histogram_buckets),
		cmocka_unit_test(test_http_request_classes),
		cmocka_unit_test(test_series_cap),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_start_ipv6),
	};

	if (argc == 2 && strcmp(argv[1], "--render") == 0)
		return render_sample();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
