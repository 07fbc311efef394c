/* The broker connection: paho MQTTAsync on its own threads, feeding the
 * main thread through a queue. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "mqtt.h"
#include "queue.h"
#include "timer.h"
#include "topic.h"

/* How long the receive thread may wait for room in the queue; past it
 * paho keeps the message and offers it again later. Well under any
 * keepalive, so the connection stays up. */
#define QUEUE_WAIT_MS	1000

static MQTTAsync		 client;
static const struct config	*cfg;
static struct queue		*inbox;
static void			(*wake_main)(void);
static char			**filters;	/* with $share/ prefix */
static int			*qoses;
static size_t			 nfilters;
static atomic_bool		 connected;
static atomic_bool		 connect_failed;
static atomic_bool		 disconnected;
static atomic_int		 connects;
static uint64_t			 retry_timer;
static int			 connect_attempts;

char *
mqtt_paho_uri(const char *url)
{
	static const char *const map[][2] = {
		{ "mqtt://", "tcp://" }, { "mqtts://", "ssl://" },
		{ "tcp://", "tcp://" }, { "ssl://", "ssl://" },
	};
	char *out;

	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++) {
		size_t n = strlen(map[i][0]);

		if (strncmp(url, map[i][0], n) != 0)
			continue;
		if ((out = malloc(strlen(url) + 8)) != NULL)
			sprintf(out, "%s%s", map[i][1], url + n);
		return out;
	}
	return NULL;
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *pm)
{
	struct message *m;
	char *t = topic;

	(void)ctx;
	if (topic_len > 0 && (t = strndup(topic, (size_t)topic_len)) == NULL)
		return 0;
	m = message_new(t, pm->payload, (size_t)pm->payloadlen, pm->qos,
	    pm->retained != 0, clock_now());
	if (t != topic)
		free(t);
	if (m == NULL || queue_push(inbox, m, QUEUE_WAIT_MS) == -1) {
		message_free(m);
		wake_main();
		return 0;	/* paho keeps it and offers it again */
	}
	wake_main();
	MQTTAsync_freeMessage(&pm);
	MQTTAsync_free(topic);
	return 1;
}

static void
on_connection_lost(void *ctx, char *cause)
{
	(void)ctx;
	atomic_store(&connected, false);
	log_warn("mqtt: connection lost (%s), reconnecting",
	    cause != NULL ? cause : "no reason given");
}

static void
on_subscribed(void *ctx, MQTTAsync_successData *r)
{
	size_t refused = 0;

	(void)ctx;
	for (size_t i = 0; i < nfilters; i++) {
		int granted = nfilters == 1 ? r->alt.qos : r->alt.qosList[i];

		if (granted == 0x80) {
			log_error("mqtt: broker refused subscription %s",
			    filters[i]);
			refused++;
		}
	}
	log_info("mqtt: subscribed to %zu filters", nfilters - refused);
}

static void
on_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	log_error("mqtt: subscribe failed (code %d%s%s)", r->code,
	    r->message != NULL ? ", " : "", r->message ? r->message : "");
}

/* Runs on the first connect and on every automatic reconnect: a broker
 * that lost our session (restart without persistence) has lost the
 * subscriptions too, so they are always made again. */
static void
on_connected(void *ctx, char *cause)
{
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
	int rc;

	(void)ctx;
	(void)cause;
	atomic_store(&connected, true);
	log_info("mqtt: %s to %s as %s",
	    atomic_fetch_add(&connects, 1) == 0 ? "connected" : "reconnected",
	    cfg->mqtt_url, cfg->mqtt_client_id);
	if (nfilters == 0) {
		log_info("mqtt: subscribed to 0 filters");
		return;
	}
	opts.onSuccess = on_subscribed;
	opts.onFailure = on_subscribe_failed;
	rc = MQTTAsync_subscribeMany(client, (int)nfilters, filters, qoses,
	    &opts);
	if (rc != MQTTASYNC_SUCCESS)
		log_error("mqtt: could not subscribe (code %d)", rc);
}

static void
on_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	log_warn("mqtt: cannot connect to %s (code %d%s%s)", cfg->mqtt_url,
	    r != NULL ? r->code : 0, r != NULL && r->message ? ": " : "",
	    r != NULL && r->message ? r->message : "");
	atomic_store(&connect_failed, true);
	wake_main();
}

static int
connect_now(void)
{
	MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

	o.keepAliveInterval = (int)cfg->mqtt_keepalive;
	o.cleansession = strcmp(cfg->mqtt_session, "clean") == 0;
	o.automaticReconnect = 1;
	o.minRetryInterval = 1;
	o.maxRetryInterval = 30;
	o.onFailure = on_connect_failed;
	if (cfg->mqtt_username[0] != '\0')
		o.username = cfg->mqtt_username;
	if (cfg->mqtt_password[0] != '\0')
		o.password = cfg->mqtt_password;
	if (strncmp(cfg->mqtt_url, "mqtts://", 8) == 0) {
		/* paho checks the chain by default but not the host name. */
		ssl.verify = 1;
		if (cfg->mqtt_ca_file[0] != '\0')
			ssl.trustStore = cfg->mqtt_ca_file;
		o.ssl = &ssl;
	}
	connect_attempts++;
	return MQTTAsync_connect(client, &o);
}

static void
on_retry_due(void *ctx)
{
	(void)ctx;
	retry_timer = 0;
	if (connect_now() != MQTTASYNC_SUCCESS)
		atomic_store(&connect_failed, true);
}

void
mqtt_tick(void)
{
	double delay;

	if (!atomic_exchange(&connect_failed, false) || retry_timer != 0)
		return;
	delay = connect_attempts < 5 ? 1 << connect_attempts : 30;
	retry_timer = timer_add(clock_now() + delay, on_retry_due, NULL,
	    NULL);
}

static int
copy_filters(const struct topic_sub *subs, size_t n)
{
	const char *group = cfg->mqtt_share_group;

	filters = calloc(n + 1, sizeof(*filters));
	qoses = calloc(n + 1, sizeof(*qoses));
	if (filters == NULL || qoses == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(subs[i].filter) + strlen(group) + 9;

		if ((filters[i] = malloc(len)) == NULL)
			return -1;
		if (group[0] != '\0')
			snprintf(filters[i], len, "$share/%s/%s", group,
			    subs[i].filter);
		else
			snprintf(filters[i], len, "%s", subs[i].filter);
		qoses[i] = subs[i].qos;
		nfilters++;
	}
	return 0;
}

int
mqtt_start(const struct config *c, const struct topic_sub *subs, size_t n,
    struct queue *q, void (*wake)(void))
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	char *uri;
	int rc;

	cfg = c;
	inbox = q;
	wake_main = wake;
	if (copy_filters(subs, n) == -1)
		return -1;
	if ((uri = mqtt_paho_uri(c->mqtt_url)) == NULL) {
		log_error("[mqtt] url: %s is not mqtt:// or mqtts://",
		    c->mqtt_url);
		return -1;
	}
	co.sendWhileDisconnected = 1;
	co.maxBufferedMessages = 1000;
	rc = MQTTAsync_createWithOptions(&client, uri, c->mqtt_client_id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	free(uri);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: cannot create client for %s (code %d)",
		    c->mqtt_url, rc);
		return -1;
	}
	MQTTAsync_setCallbacks(client, NULL, on_connection_lost, on_message,
	    NULL);
	MQTTAsync_setConnected(client, NULL, on_connected);
	if (connect_now() != MQTTASYNC_SUCCESS)
		atomic_store(&connect_failed, true);
	return 0;
}

int
mqtt_publish(const char *topic, const void *payload, size_t len, int qos,
    bool retain)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;

	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = qos;
	m.retained = retain;
	return MQTTAsync_sendMessage(client, topic, &m, &opts) ==
	    MQTTASYNC_SUCCESS ? 0 : -1;
}

bool
mqtt_connected(void)
{
	return atomic_load(&connected);
}

static void
on_disconnected(void *ctx, MQTTAsync_successData *r)
{
	(void)ctx;
	(void)r;
	atomic_store(&disconnected, true);
}

static void
wait_disconnect(int timeout_ms)
{
	struct timespec step = { 0, 10 * 1000000 };

	for (int waited = 0; waited < timeout_ms &&
	    !atomic_load(&disconnected); waited += 10)
		nanosleep(&step, NULL);
}

void
mqtt_stop(int timeout_ms)
{
	MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;

	if (client == NULL)
		return;
	if (retry_timer != 0)
		timer_cancel(retry_timer);
	o.timeout = timeout_ms;
	o.onSuccess = on_disconnected;
	if (MQTTAsync_isConnected(client) &&
	    MQTTAsync_disconnect(client, &o) == MQTTASYNC_SUCCESS)
		wait_disconnect(timeout_ms + 100);
	MQTTAsync_destroy(&client);
	for (size_t i = 0; i < nfilters; i++)
		free(filters[i]);
	free(filters);
	free(qoses);
	filters = NULL;
	qoses = NULL;
	nfilters = 0;
}
