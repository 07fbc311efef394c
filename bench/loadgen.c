/* loadgen: publishes Kompose-shaped events at QoS 1 to a broker on
 * 127.0.0.1, as fast as it takes them or at a fixed rate, and prints one
 * JSON line of what it did. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#define ANALYTICS_TOPIC	"kompose/analytics/pageview"
#define FAILED_TOPIC	"kompose/vault/security/failed"
#define MARKER_TOPIC	"kompose/bench/done"
#define PAYLOAD_MAX	(1 << 20)
#define ACK_WAIT_S	120

enum kind { ANALYTICS, FAILED };

struct options {
	int		 port;
	long		 count;
	double		 rate;	/* messages per second, 0: flat out */
	enum kind	 kind;
	long		 size;	/* payload bytes, 0: unpadded */
	int		 inflight;
	long		 pairs;		/* distinct email/ip pairs */
	long		 first_seq;
	int		 marker;
	const char	*client_id;
	const char	*topic;
};

/* In-flight accounting, shared with paho's callback thread. */
static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	changed = PTHREAD_COND_INITIALIZER;
static int		inflight;
static long		acked, failed;
static int		connect_state;	/* 0 waiting, 1 up, -1 failed */

static int64_t
now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen -p PORT -n COUNT [-r RATE] [-k analytics|failed]\n"
	    "               [-s BYTES] [-w INFLIGHT] [-P PAIRS] [-f FIRST]\n"
	    "               [-t TOPIC] [-i CLIENT_ID] [-m]\n");
	exit(2);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->inflight = 64;
	o->pairs = 1000;
	o->client_id = "bench-loadgen";
	while ((ch = getopt(argc, argv, "p:n:r:k:s:w:P:f:t:i:m")) != -1) {
		switch (ch) {
		case 'p': o->port = atoi(optarg); break;
		case 'n': o->count = atol(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'k':
			if (strcmp(optarg, "analytics") == 0)
				o->kind = ANALYTICS;
			else if (strcmp(optarg, "failed") == 0)
				o->kind = FAILED;
			else
				usage();
			break;
		case 's': o->size = atol(optarg); break;
		case 'w': o->inflight = atoi(optarg); break;
		case 'P': o->pairs = atol(optarg); break;
		case 'f': o->first_seq = atol(optarg); break;
		case 't': o->topic = optarg; break;
		case 'i': o->client_id = optarg; break;
		case 'm': o->marker = 1; break;
		default: usage();
		}
	}
	if (o->port <= 0 || o->count < 0 || o->inflight < 1 ||
	    o->pairs < 1 || o->size < 0 || o->size > PAYLOAD_MAX - 1)
		usage();
	if (o->topic == NULL)
		o->topic = o->kind == ANALYTICS ? ANALYTICS_TOPIC :
		    FAILED_TOPIC;
}

/* Writes the event's head (everything before the padding) into buf;
 * returns its length. */
static int
format_head(const struct options *o, char *buf, size_t size, long seq,
    int64_t t_ns)
{
	long pair = seq % o->pairs;

	if (o->kind == FAILED)
		return snprintf(buf, size,
		    "{\"event\":\"security.failed\","
		    "\"timestamp\":\"2025-10-12T14:30:00Z\","
		    "\"data\":{\"seq\":%ld,\"t_ns\":%" PRId64 ","
		    "\"email\":\"user%ld@example.com\","
		    "\"ip_address\":\"10.0.%ld.%ld\","
		    "\"reason\":\"invalid_password\"", seq, t_ns, pair,
		    pair / 256 % 256, pair % 256);
	if (o->size != 0 && o->size < 200)
		return snprintf(buf, size,
		    "{\"event\":\"pageview\",\"data\":{\"seq\":%ld,"
		    "\"t_ns\":%" PRId64 ",\"url\":\"/blog/article\"", seq,
		    t_ns);
	return snprintf(buf, size,
	    "{\"event\":\"pageview\",\"timestamp\":\"2025-10-12T14:30:00Z\","
	    "\"data\":{\"seq\":%ld,\"t_ns\":%" PRId64 ","
	    "\"website_id\":\"web_123\",\"session_id\":\"sess_456\","
	    "\"url\":\"/blog/article\",\"referrer\":\"https://google.com\","
	    "\"country\":\"DE\",\"device\":\"desktop\",\"browser\":\"Chrome\","
	    "\"os\":\"Linux\"", seq, t_ns);
}

/* The whole payload: the head, a "pad" field filling up to o->size when
 * there is room, and the closing braces. Returns its length. */
static int
format_payload(const struct options *o, char *buf, long seq, int64_t t_ns)
{
	static const char tail[] = "}}";
	static const char pad_open[] = ",\"pad\":\"";
	int len = format_head(o, buf, PAYLOAD_MAX, seq, t_ns);
	long room = o->size - len - (long)(sizeof(pad_open) - 1) - 1 -
	    (long)(sizeof(tail) - 1);

	if (room > 0) {
		memcpy(buf + len, pad_open, sizeof(pad_open) - 1);
		len += sizeof(pad_open) - 1;
		memset(buf + len, 'x', (size_t)room);
		len += (int)room;
		buf[len++] = '"';
	}
	memcpy(buf + len, tail, sizeof(tail));
	return len + (int)sizeof(tail) - 1;
}

static void
on_connected(void *ctx, MQTTAsync_successData *r)
{
	(void)ctx;
	(void)r;
	pthread_mutex_lock(&lock);
	connect_state = 1;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static void
on_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	fprintf(stderr, "loadgen: connect failed (code %d)\n",
	    r != NULL ? r->code : 0);
	pthread_mutex_lock(&lock);
	connect_state = -1;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static void
settle(int ok)
{
	pthread_mutex_lock(&lock);
	inflight--;
	if (ok)
		acked++;
	else
		failed++;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static void
on_acked(void *ctx, MQTTAsync_successData *r)
{
	(void)ctx;
	(void)r;
	settle(1);
}

static void
on_publish_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	(void)r;
	settle(0);
}

static int
connect_broker(MQTTAsync c, const struct options *o)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	struct timespec deadline;

	co.keepAliveInterval = 30;
	co.cleansession = 1;
	co.maxInflight = o->inflight + 16;
	co.onSuccess = on_connected;
	co.onFailure = on_connect_failed;
	if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
		return -1;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&lock);
	while (connect_state == 0 &&
	    pthread_cond_timedwait(&changed, &lock, &deadline) != ETIMEDOUT)
		continue;
	pthread_mutex_unlock(&lock);
	return connect_state == 1 ? 0 : -1;
}

/* Waits until fewer than limit publishes are unacknowledged; returns -1
 * when none was acknowledged for ACK_WAIT_S seconds. */
static int
wait_room(int limit)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ACK_WAIT_S;
	pthread_mutex_lock(&lock);
	while (inflight >= limit && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&changed, &lock, &deadline);
	rc = inflight >= limit ? -1 : 0;
	if (rc == 0)
		inflight++;
	pthread_mutex_unlock(&lock);
	return rc;
}

static void
wait_until(int64_t mono_ns)
{
	struct timespec ts = { mono_ns / 1000000000, mono_ns % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		continue;
}

static int
publish(MQTTAsync c, const char *topic, char *payload, int len)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	m.payload = payload;
	m.payloadlen = len;
	m.qos = 1;
	ro.onSuccess = on_acked;
	ro.onFailure = on_publish_failed;
	if (MQTTAsync_sendMessage(c, topic, &m, &ro) != MQTTASYNC_SUCCESS) {
		settle(0);
		return -1;
	}
	return 0;
}

/* The marker: same publisher, after every event, so it arrives last. */
static int
publish_marker(MQTTAsync c, const struct options *o, char *buf)
{
	long seq = o->first_seq + o->count;
	int len;

	if (wait_room(o->inflight) == -1)
		return -1;
	len = snprintf(buf, PAYLOAD_MAX,
	    "{\"event\":\"bench.done\",\"data\":{\"seq\":%ld,"
	    "\"t_ns\":%" PRId64 ",\"count\":%ld,\"pairs\":%ld}}", seq,
	    now_ns(CLOCK_REALTIME), o->count, o->pairs);
	return publish(c, MARKER_TOPIC, buf, len);
}

static void
drain_acks(void)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ACK_WAIT_S;
	pthread_mutex_lock(&lock);
	while (inflight > 0 &&
	    pthread_cond_timedwait(&changed, &lock, &deadline) != ETIMEDOUT)
		continue;
	pthread_mutex_unlock(&lock);
}

/* Leaves the broker with a DISCONNECT, waiting for it up to a second. */
static void
disconnect(MQTTAsync c)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
	struct timespec step = { 0, 10 * 1000000 };

	d.timeout = 1000;
	if (MQTTAsync_disconnect(c, &d) != MQTTASYNC_SUCCESS)
		return;
	for (int i = 0; i < 100 && MQTTAsync_isConnected(c); i++)
		nanosleep(&step, NULL);
}

int
main(int argc, char **argv)
{
	MQTTAsync c;
	struct options o;
	char uri[64], *buf;
	int64_t first_ns = 0, last_ns = 0, start_mono;
	long sent = 0, bytes = 0;
	int len = 0, stalled = 0;

	parse_options(argc, argv, &o);
	if ((buf = malloc(PAYLOAD_MAX)) == NULL)
		return 1;
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", o.port);
	if (MQTTAsync_create(&c, uri, o.client_id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS)
		return 1;
	if (connect_broker(c, &o) == -1) {
		fprintf(stderr, "loadgen: cannot connect to %s\n", uri);
		MQTTAsync_destroy(&c);
		return 1;
	}
	start_mono = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < o.count; i++) {
		int64_t t;

		if (o.rate > 0)
			wait_until(start_mono + (int64_t)(i * 1e9 / o.rate));
		if (wait_room(o.inflight) == -1) {
			stalled = 1;
			break;
		}
		t = now_ns(CLOCK_REALTIME);
		if (i == 0)
			first_ns = t;
		len = format_payload(&o, buf, o.first_seq + i, t);
		if (publish(c, o.topic, buf, len) == 0) {
			sent++;
			bytes += len;
		}
		last_ns = t;
	}
	if (o.marker && !stalled && publish_marker(c, &o, buf) == -1)
		stalled = 1;
	drain_acks();
	printf("{\"sent\":%ld,\"acked\":%ld,\"failed\":%ld,\"stalled\":%d,"
	    "\"payload_bytes\":%d,\"bytes\":%ld,\"first_ns\":%" PRId64 ","
	    "\"last_ns\":%" PRId64 ",\"done_ns\":%" PRId64 "}\n", sent,
	    acked, failed, stalled, len, bytes, first_ns, last_ns,
	    now_ns(CLOCK_REALTIME));
	fflush(stdout);
	disconnect(c);
	MQTTAsync_destroy(&c);
	free(buf);
	return failed == 0 && !stalled ? 0 : 1;
}
