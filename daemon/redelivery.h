/*
 * Recognises a QoS 1 message that the broker sends again after a
 * reconnect although the daemon had taken it: when the connection
 * closes (the intake pause, a network cut) between the arrival callback
 * and the PUBACK reaching the broker, MQTT 3.1.1 has the broker resend
 * it with the DUP flag and the same packet identifier. Handling it again
 * would run every rule twice on one event.
 */
#ifndef MQTTRULES_REDELIVERY_H
#define MQTTRULES_REDELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDELIVERY_SLOTS	2048	/* messages remembered */

struct redelivery_slot {
	uint64_t	hash;		/* of topic and payload */
	uint32_t	connection;	/* the connection it came on */
	int		msgid;		/* 0: empty slot */
};

struct redelivery {
	struct redelivery_slot	slot[REDELIVERY_SLOTS];
	size_t			next;
};

/* Remembers a message taken on connection (a number that grows with
 * every connect), replacing the oldest one remembered. */
void	redelivery_taken(struct redelivery *, int msgid, uint32_t connection,
	    const char *topic, const void *payload, size_t len);

/* Whether a message with the DUP flag is one taken on an earlier
 * connection: same packet identifier, topic and payload. A broker that
 * reused the identifier for an identical message within the last
 * REDELIVERY_SLOTS messages would fool it; mosquitto hands identifiers
 * out in turn, 65535 before one comes back. */
bool	redelivery_seen(const struct redelivery *, int msgid,
	    uint32_t connection, const char *topic, const void *payload,
	    size_t len);

#endif
