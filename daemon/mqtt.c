/* The broker connection: paho MQTTAsync on its own threads, feeding the
 * main thread through a queue. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "clock.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "queue.h"
#include "redelivery.h"
#include "timer.h"
#include "topic.h"

/* How long the receive thread may wait for room in the queue; past it
 * paho keeps the message and offers it again later. Well under any
 * keepalive, so the connection stays up. */
#define QUEUE_WAIT_MS	1000

static MQTTAsync		 client;
static const struct config	*cfg;
static struct queue		*inbox;
static struct journal		*journal;
static atomic_bool		 paused;

static void	pause_connection(void);
static char			 status_topic[512];
static char			 shown_url[512];	/* no user:password */
static void			(*wake_main)(void);
/* Filters as sent to the broker, with the $share/ prefix if any. */
struct sub_list {
	char	**filters;
	int	 *qos;
	size_t	  n;
};

/* current is read by the paho thread on every connect and replaced by
 * the main thread on reload; stale holds filters to drop at the next
 * connect, for a reload made while disconnected. */
static pthread_mutex_t		 subs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sub_list		 current, stale;
static atomic_bool		 connected;
static atomic_bool		 connect_failed;
static atomic_bool		 disconnected;
static atomic_int		 connects;
static atomic_uint		 connection;	/* grows with every connect */
static struct redelivery	 taken;		/* receive thread only */
static atomic_bool		 pausing;	/* pause's disconnect pending */
static bool			 resume_wanted;
static uint64_t			 retry_timer;
static atomic_int		 connect_attempts;

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

/* A message the broker sends again although it was taken (see
 * redelivery.h) is acknowledged and not handled twice. */
static bool
already_taken(const MQTTAsync_message *pm, const struct message *m)
{
	unsigned int now = atomic_load(&connection);

	if (!pm->dup || pm->qos == 0 ||
	    !redelivery_seen(&taken, pm->msgid, now, m->topic, m->payload,
	    m->payload_len))
		return false;
	redelivery_taken(&taken, pm->msgid, now, m->topic, m->payload,
	    m->payload_len);
	log_info("mqtt: message %d on %s sent again after a reconnect; "
	    "already taken, so not handled twice", pm->msgid, m->topic);
	return true;
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
	if (m != NULL && already_taken(pm, m)) {
		message_free(m);
		goto taken;
	}
	/* paho acknowledges QoS 1 once this returns (unless it queued the
	 * message itself first): the journal has it on disk before. */
	if (m != NULL && journal != NULL && journal_arrived(journal, m) == -1) {
		log_error("journal: cannot record a message on %s", m->topic);
		message_free(m);
		return 0;
	}
	if (pm->qos > 0 && m != NULL)
		redelivery_taken(&taken, pm->msgid, atomic_load(&connection),
		    m->topic, m->payload, m->payload_len);
	if (m == NULL || queue_push(inbox, m, QUEUE_WAIT_MS) == -1) {
		message_free(m);
		wake_main();
		return 0;	/* paho keeps it and offers it again */
	}
	wake_main();
taken:
	MQTTAsync_freeMessage(&pm);
	MQTTAsync_free(topic);
	return 1;
}

static void
on_connection_lost(void *ctx, char *cause)
{
	(void)ctx;
	atomic_store(&connected, false);
	metrics_set(M_MQTT_CONNECTED, 0);
	log_warn("mqtt: connection lost (%s), reconnecting",
	    cause != NULL ? cause : "no reason given");
}

static void
sub_list_free(struct sub_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->filters[i]);
	free(l->filters);
	free(l->qos);
	memset(l, 0, sizeof(*l));
}

static int
sub_list_add(struct sub_list *l, const char *filter, int qos)
{
	char **f;
	int *q;

	if ((f = realloc(l->filters, (l->n + 1) * sizeof(*f))) == NULL)
		return -1;
	l->filters = f;
	if ((q = realloc(l->qos, (l->n + 1) * sizeof(*q))) == NULL)
		return -1;
	l->qos = q;
	if ((f[l->n] = strdup(filter)) == NULL)
		return -1;
	q[l->n++] = qos;
	return 0;
}

static bool
sub_list_has(const struct sub_list *l, const char *filter, int qos)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->filters[i], filter) == 0 &&
		    (qos < 0 || l->qos[i] == qos))
			return true;
	return false;
}

/* Entries of a missing from b (same filter and, with match_qos, QoS). */
static int
sub_list_minus(const struct sub_list *a, const struct sub_list *b,
    bool match_qos, struct sub_list *out)
{
	for (size_t i = 0; i < a->n; i++)
		if (!sub_list_has(b, a->filters[i], match_qos ? a->qos[i] : -1)
		    && sub_list_add(out, a->filters[i], a->qos[i]) == -1)
			return -1;
	return 0;
}

static void
on_subscribed(void *ctx, MQTTAsync_successData *r)
{
	struct sub_list *l = ctx;
	size_t refused = 0;

	for (size_t i = 0; i < l->n; i++) {
		int granted = l->n == 1 ? r->alt.qos : r->alt.qosList[i];

		if (granted == 0x80) {
			log_error("mqtt: broker refused subscription %s",
			    l->filters[i]);
			refused++;
		}
	}
	log_info("mqtt: subscribed to %zu filters", l->n - refused);
	sub_list_free(l);
	free(l);
}

static void
on_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
	struct sub_list *l = ctx;

	/* A disconnect (the intake pause, a stop) cancels what is pending;
	 * the next connect subscribes again. */
	if (r->code == MQTTASYNC_OPERATION_INCOMPLETE)
		log_info("mqtt: subscribe to %zu filters cancelled by a "
		    "disconnect", l->n);
	else
		log_error("mqtt: subscribe to %zu filters failed (code %d%s%s)",
		    l->n, r->code, r->message != NULL ? ", " : "",
		    r->message ? r->message : "");
	sub_list_free(l);
	free(l);
}

static void
on_unsubscribed(void *ctx, MQTTAsync_successData *r)
{
	struct sub_list *l = ctx;

	(void)r;
	log_info("mqtt: unsubscribed from %zu filters", l->n);
	sub_list_free(l);
	free(l);
}

static void
on_unsubscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
	struct sub_list *l = ctx;

	log_error("mqtt: unsubscribe failed (code %d)", r->code);
	sub_list_free(l);
	free(l);
}

/* Sends SUBSCRIBE (or UNSUBSCRIBE) for l, which the callbacks free.
 * paho sends commands in order, so a subscribe followed by an
 * unsubscribe reaches the broker in that order: no gap in between. */
static void
send_list(struct sub_list *l, bool subscribe)
{
	MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
	int rc;

	if (l->n == 0) {
		if (subscribe)
			log_info("mqtt: subscribed to 0 filters");
		sub_list_free(l);
		free(l);
		return;
	}
	o.context = l;
	o.onSuccess = subscribe ? on_subscribed : on_unsubscribed;
	o.onFailure = subscribe ? on_subscribe_failed : on_unsubscribe_failed;
	rc = subscribe ?
	    MQTTAsync_subscribeMany(client, (int)l->n, l->filters, l->qos, &o) :
	    MQTTAsync_unsubscribeMany(client, (int)l->n, l->filters, &o);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: could not %s (code %d)", subscribe ?
		    "subscribe" : "unsubscribe", rc);
		sub_list_free(l);
		free(l);
	}
}

/* The retained status: "online" after each connect, "offline" at a
 * clean stop and, as the last will, when the connection dies. */
static void
publish_status(const char *state)
{
	if (mqtt_publish(status_topic, state, strlen(state), 1, true) == -1)
		log_warn("mqtt: cannot publish %s to %s", state,
		    status_topic);
}

/* Runs on the first connect and on every automatic reconnect: a broker
 * that lost our session (restart without persistence) has lost the
 * subscriptions too, so they are always made again. */
static void
on_connected(void *ctx, char *cause)
{
	struct sub_list *subs, *drop;

	(void)ctx;
	(void)cause;
	atomic_fetch_add(&connection, 1);
	if (atomic_load(&paused)) {
		/* The pause came while this connect was under way. */
		log_info("mqtt: connected while intake is paused; leaving");
		pause_connection();
		return;
	}
	atomic_store(&connected, true);
	metrics_set(M_MQTT_CONNECTED, 1);
	if (atomic_fetch_add(&connects, 1) > 0)
		metrics_add(M_MQTT_RECONNECTS, NULL, 1);
	atomic_store(&connect_attempts, 0);
	log_info("mqtt: %s to %s as %s", connects > 1 ? "reconnected" :
	    "connected", shown_url, cfg->mqtt_client_id);
	publish_status("online");
	subs = calloc(1, sizeof(*subs));
	drop = calloc(1, sizeof(*drop));
	if (subs == NULL || drop == NULL) {
		free(subs);
		free(drop);
		log_error("mqtt: out of memory subscribing");
		return;
	}
	pthread_mutex_lock(&subs_lock);
	sub_list_minus(&current, drop, true, subs);
	*drop = stale;
	memset(&stale, 0, sizeof(stale));
	pthread_mutex_unlock(&subs_lock);
	send_list(subs, true);
	send_list(drop, false);
}

static void
on_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	log_warn("mqtt: cannot connect to %s (code %d%s%s)", shown_url,
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
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;

	o.keepAliveInterval = (int)cfg->mqtt_keepalive;
	o.cleansession = strcmp(cfg->mqtt_session, "clean") == 0;
	o.automaticReconnect = 1;
	o.minRetryInterval = 1;
	o.maxRetryInterval = 30;
	o.onFailure = on_connect_failed;
	o.MQTTVersion = MQTTVERSION_3_1_1;
	will.topicName = status_topic;
	will.message = "offline";
	will.retained = 1;
	will.qos = 1;
	o.will = &will;
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
	atomic_fetch_add(&connect_attempts, 1);
	return MQTTAsync_connect(client, &o);
}

/* Starts a connect; a refusal to even start one is retried by
 * mqtt_tick like a failed connect. */
static void
try_connect(void)
{
	int rc;

	if (MQTTAsync_isConnected(client))
		return;
	if ((rc = connect_now()) != MQTTASYNC_SUCCESS) {
		log_warn("mqtt: cannot start connecting to %s (code %d), "
		    "will retry", shown_url, rc);
		atomic_store(&connect_failed, true);
	}
}

static void
on_retry_due(void *ctx)
{
	(void)ctx;
	retry_timer = 0;
	try_connect();
}

void
mqtt_tick(void)
{
	double delay;
	int n;

	if (resume_wanted && !atomic_load(&pausing)) {
		resume_wanted = false;
		try_connect();
	}
	if (!atomic_exchange(&connect_failed, false) || retry_timer != 0)
		return;
	n = atomic_load(&connect_attempts);
	delay = n < 5 ? 1 << n : 30;
	retry_timer = timer_add(clock_now() + delay, on_retry_due, NULL,
	    NULL);
}

/* The broker's form of subs: with the $share/<group>/ prefix when a
 * share group is set. */
static int
build_list(const struct topic_sub *subs, size_t n, struct sub_list *out)
{
	const char *group = cfg->mqtt_share_group;
	char buf[1024];

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		if (group[0] != '\0')
			snprintf(buf, sizeof(buf), "$share/%s/%s", group,
			    subs[i].filter);
		else
			snprintf(buf, sizeof(buf), "%s", subs[i].filter);
		if (sub_list_add(out, buf, subs[i].qos) == -1) {
			sub_list_free(out);
			return -1;
		}
	}
	return 0;
}

int
mqtt_set_subscriptions(const struct topic_sub *subs, size_t n)
{
	struct sub_list next, old, *add, *drop;

	if (build_list(subs, n, &next) == -1)
		return -1;
	add = calloc(1, sizeof(*add));
	drop = calloc(1, sizeof(*drop));
	pthread_mutex_lock(&subs_lock);
	old = current;
	current = next;
	if (add != NULL && drop != NULL) {
		sub_list_minus(&next, &old, true, add);
		sub_list_minus(&old, &next, false, drop);
		if (!atomic_load(&connected))
			sub_list_minus(drop, &stale, false, &stale);
	}
	pthread_mutex_unlock(&subs_lock);
	sub_list_free(&old);
	if (add == NULL || drop == NULL || !atomic_load(&connected)) {
		free(add);
		if (drop != NULL)
			sub_list_free(drop);
		free(drop);
		return add != NULL && drop != NULL ? 0 : -1;
	}
	if (add->n > 0)
		send_list(add, true);
	else
		free(add);
	send_list(drop, false);
	return 0;
}

int
mqtt_start(const struct config *c, const struct topic_sub *subs, size_t n,
    struct queue *q, struct journal *j, void (*wake)(void))
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	char *uri;
	int rc;

	cfg = c;
	inbox = q;
	journal = j;
	wake_main = wake;
	if (c->mqtt_status_topic[0] != '\0')
		snprintf(status_topic, sizeof(status_topic), "%s",
		    c->mqtt_status_topic);
	else
		snprintf(status_topic, sizeof(status_topic),
		    "mqttrules/%s/status", c->mqtt_client_id);
	if (build_list(subs, n, &current) == -1)
		return -1;
	log_safe_url(c->mqtt_url, shown_url, sizeof(shown_url));
	if ((uri = mqtt_paho_uri(c->mqtt_url)) == NULL) {
		log_error("[mqtt] url: %s is not mqtt:// or mqtts://",
		    shown_url);
		return -1;
	}
	co.sendWhileDisconnected = 1;
	co.maxBufferedMessages = 1000;
	/* paho's own store keeps what it queued before our callback saw
	 * it, and our QoS 1 publishes until the broker has them. */
	rc = MQTTAsync_createWithOptions(&client, uri, c->mqtt_client_id,
	    MQTTCLIENT_PERSISTENCE_DEFAULT, c->daemon_state_dir, &co);
	free(uri);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: cannot create client for %s (code %d)",
		    shown_url, rc);
		return -1;
	}
	MQTTAsync_setCallbacks(client, NULL, on_connection_lost, on_message,
	    NULL);
	MQTTAsync_setConnected(client, NULL, on_connected);
	try_connect();
	return 0;
}

static void
on_pause_done(void *ctx, MQTTAsync_successData *r)
{
	(void)ctx;
	(void)r;
	atomic_store(&pausing, false);
	wake_main();
}

static void
on_pause_failed(void *ctx, MQTTAsync_failureData *r)
{
	(void)ctx;
	(void)r;
	atomic_store(&pausing, false);
	wake_main();
}

/* Starts the disconnect of a pause; any thread. */
static void
pause_connection(void)
{
	MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;

	o.timeout = 0;
	o.onSuccess = on_pause_done;
	o.onFailure = on_pause_failed;
	atomic_store(&pausing, true);
	if (!MQTTAsync_isConnected(client) ||
	    MQTTAsync_disconnect(client, &o) != MQTTASYNC_SUCCESS)
		atomic_store(&pausing, false);
	atomic_store(&connected, false);
	metrics_set(M_MQTT_CONNECTED, 0);
}

void
mqtt_pause(void)
{
	if (atomic_load(&paused) || client == NULL)
		return;
	atomic_store(&paused, true);
	pause_connection();
}

/* Connects again once the pause's disconnect has finished: a connect
 * started while it is under way would be lost with it. mqtt_tick
 * finishes what this cannot. */
void
mqtt_resume(void)
{
	if (!atomic_load(&paused) || client == NULL)
		return;
	atomic_store(&paused, false);
	resume_wanted = true;
	if (!atomic_load(&pausing)) {
		resume_wanted = false;
		try_connect();
	}
}

int
mqtt_publish(const char *topic, const void *payload, size_t len, int qos,
    bool retain)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;

	if (client == NULL)
		return -1;
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
	if (MQTTAsync_isConnected(client))
		publish_status("offline");
	if (MQTTAsync_isConnected(client) &&
	    MQTTAsync_disconnect(client, &o) == MQTTASYNC_SUCCESS)
		wait_disconnect(timeout_ms + 100);
	MQTTAsync_destroy(&client);
	sub_list_free(&current);
	sub_list_free(&stale);
}
