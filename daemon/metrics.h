/* Prometheus metrics and health, served on [daemon] metrics by
 * libmicrohttpd's own thread. The update calls are cheap and may be
 * made from any thread. */
#ifndef MQTTRULES_METRICS_H
#define MQTTRULES_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Counters (monotonic). label is the value of the metric's one label
 * (see metrics.c for which), NULL for metrics without one. */
enum metrics_counter {
	M_MESSAGES_RECEIVED,	/* label: subscription filter */
	M_EVENTS_HANDLED,	/* label: rule */
	M_EVENTS_FAILED,	/* label: rule */
	M_EVENTS_DEAD_LETTERED,	/* label: rule */
	M_HTTP_RETRIES,		/* label: rule */
	M_MQTT_RECONNECTS,
	M_COUNTER_LAST
};

/* Gauges, set to a current value. */
enum metrics_gauge {
	M_MQTT_CONNECTED,
	M_MQTT_SUBSCRIPTIONS,
	M_QUEUE_DEPTH,
	M_EVENTS_IN_FLIGHT,
	M_JOURNAL_BYTES,
	M_JOURNAL_OLDEST_SECONDS,
	M_COUNTER_KEYS,
	M_GAUGE_LAST
};

/* Histograms of durations in seconds. */
enum metrics_histogram {
	M_HANDLER_SECONDS,	/* label: rule */
	M_HTTP_SECONDS,		/* label: rule */
	M_HISTOGRAM_LAST
};

void	metrics_add(enum metrics_counter, const char *label, double n);
void	metrics_set(enum metrics_gauge, double value);
void	metrics_observe(enum metrics_histogram, const char *label,
	    double seconds);

/* HTTP requests per rule and status class ("2xx", "4xx", "5xx", or
 * "error" when no response came). */
void	metrics_http_request(const char *rule, long status);

/* The main loop calls this every turn; /healthz fails when it has not
 * for a while, or when the broker session is down. */
void	metrics_heartbeat(double now);

/*
 * Starts serving GET /metrics and GET /healthz on listen ("host:port";
 * an IPv4 address, or [v6]). Returns 0, or -1 with err set. With
 * listen empty it serves nothing and returns 0; the update calls still
 * work.
 */
int	metrics_start(const char *listen, char *err, size_t size);
void	metrics_stop(void);

/* The exposition text as served on /metrics; malloc'd, for tests. */
char	*metrics_render(void);

/* The port metrics_start bound (the one chosen for port 0), or 0 when
 * not serving. */
int	metrics_port(void);

/* The /healthz decision at time now: 0 with reason "ok\n", or -1 with
 * a one-line reason. */
int	metrics_health(double now, char *reason, size_t size);

#endif
