/*
 * Recognises a QoS 1 message that the broker sends again after a
 * reconnect although the daemon had taken it: when the connection
 * closes (the intake pause, a network cut) between the arrival callback
 * and the PUBACK reaching the broker, MQTT 3.1.1 has the broker resend
 * it with the DUP flag and the same packet identifier. Handling it again
 * would run every rule twice on one event. Kept in memory only: after a
 * restart of the daemon such a resend is handled again.
 */
#ifndef MQTTRULES_REDELIVERY_H
#define MQTTRULES_REDELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One slot per packet identifier modulo this: exact while the broker
 * has at most this many messages out to the daemon unacknowledged
 * (mosquitto's max_inflight_messages, 20 by default). */
#define REDELIVERY_SLOTS	4096

struct redelivery_slot {
	uint64_t	hash;		/* of topic and payload */
	uint32_t	connection;	/* the connection it came on */
	int		msgid;		/* 0: empty slot */
};

struct redelivery {
	struct redelivery_slot	slot[REDELIVERY_SLOTS];
};

/* Remembers a message taken on connection (a number that grows by one
 * with every connect), in its identifier's slot. */
void	redelivery_taken(struct redelivery *, int msgid, uint32_t connection,
	    const char *topic, const void *payload, size_t len);

/* Whether a message with the DUP flag is one taken on the connection
 * before this one: same packet identifier, topic and payload. Only the
 * one before: across a broker restart identifiers start again (or go
 * back to the last saved state) and a new message may carry an old
 * one's identifier, but it can come back with DUP only on the
 * connection after the one that lost it. A resend is recorded again
 * (redelivery_taken) in case this connection drops its
 * acknowledgement too. */
bool	redelivery_seen(const struct redelivery *, int msgid,
	    uint32_t connection, const char *topic, const void *payload,
	    size_t len);

#endif
