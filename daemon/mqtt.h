/* The broker connection: paho MQTTAsync on its own threads, feeding the
 * main thread through a queue. */
#ifndef MQTTRULES_MQTT_H
#define MQTTRULES_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct journal;
struct queue;
struct topic_sub;

/*
 * Connects in the background with automatic reconnect and subscribes to
 * subs (copied) after every connect. Each message is recorded in j
 * (may be NULL), then goes into q, then wake() is called; all on a paho
 * thread, before the broker gets the acknowledgement. Returns 0, or -1 when
 * the client could not be created (bad URL).
 */
int	mqtt_start(const struct config *, const struct topic_sub *subs,
	    size_t n, struct queue *q, struct journal *j,
	    void (*wake)(void));

/* Stops taking messages (the broker keeps them for a persistent
 * session) and takes them again; main thread. */
void	mqtt_pause(void);
void	mqtt_resume(void);

/* Replaces the subscriptions (reload): subscribes to what is new, then
 * unsubscribes from what is gone. Main thread. Returns 0 or -1. */
int	mqtt_set_subscriptions(const struct topic_sub *subs, size_t n);

/* Main thread, once per loop turn: retries a failed first connect. */
void	mqtt_tick(void);

/* Queues a publish; paho buffers it while disconnected. Any thread. */
int	mqtt_publish(const char *topic, const void *payload, size_t len,
	    int qos, bool retain);

bool	mqtt_connected(void);

/* Disconnects, waiting up to timeout_ms, and frees the client. */
void	mqtt_stop(int timeout_ms);

/* Turns mqtt:// and mqtts:// into the tcp:// and ssl:// that paho
 * takes. Returns a malloc'd string, NULL for another scheme. */
char	*mqtt_paho_uri(const char *url);

#endif
