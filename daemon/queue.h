/* A bounded queue of MQTT messages from the client thread to the main
 * thread. */
#ifndef MQTTRULES_QUEUE_H
#define MQTTRULES_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct message {
	char	*topic;
	char	*payload;	/* payload_len bytes plus a NUL */
	size_t	 payload_len;
	int	 qos;
	bool	 retained;
	double	 time;		/* arrival, seconds since the epoch */
	uint64_t id;		/* in the journal, 0 when not journaled */
};

struct message	*message_new(const char *topic, const void *payload,
		    size_t len, int qos, bool retained, double time);
void		 message_free(struct message *);

struct queue;

struct queue	*queue_new(size_t capacity);
void		 queue_free(struct queue *);

/* Appends m, waiting up to wait_ms for room, then growing: a message
 * already in the journal must not be handed back to paho, which would
 * hold it in memory and offer it again only much later. Once a wait has
 * run out the queue is overflowing: pushes stop waiting until it has
 * drained to half its capacity, and the intake pause bounds how far it
 * grows. Returns 0, or -1 when out of memory (m is then still the
 * caller's). Any thread. */
int		 queue_push(struct queue *, struct message *m, int wait_ms);

/* Whether a push has waited in vain for room (see queue_push). */
bool		 queue_overflowing(struct queue *);

/* Takes the oldest message, NULL when empty. Never blocks. */
struct message	*queue_pop(struct queue *);

size_t		 queue_depth(struct queue *);

#endif
