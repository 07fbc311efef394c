/* A bounded queue of MQTT messages from the client thread to the main
 * thread. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"

struct queue {
	pthread_mutex_t	  lock;
	pthread_cond_t	  room;
	struct message	**slots;
	size_t		  capacity, head, count;
	size_t		  base;		/* the capacity asked for */
	bool		  overflowing;	/* grew past base, not yet drained */
};

struct message *
message_new(const char *topic, const void *payload, size_t len, int qos,
    bool retained, double time)
{
	struct message *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->topic = strdup(topic);
	m->payload = malloc(len + 1);
	if (m->topic == NULL || m->payload == NULL) {
		message_free(m);
		return NULL;
	}
	if (len > 0)
		memcpy(m->payload, payload, len);
	m->payload[len] = '\0';
	m->payload_len = len;
	m->qos = qos;
	m->retained = retained;
	m->time = time;
	return m;
}

void
message_free(struct message *m)
{
	if (m == NULL)
		return;
	free(m->topic);
	free(m->payload);
	free(m);
}

struct queue *
queue_new(size_t capacity)
{
	struct queue *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->slots = calloc(capacity, sizeof(*q->slots))) == NULL) {
		free(q);
		return NULL;
	}
	q->capacity = q->base = capacity;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->room, NULL);
	return q;
}

void
queue_free(struct queue *q)
{
	struct message *m;

	if (q == NULL)
		return;
	while ((m = queue_pop(q)) != NULL)
		message_free(m);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->room);
	free(q->slots);
	free(q);
}

static void
deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Doubles the ring, keeping the order. Called with the lock held. */
static int
grow(struct queue *q)
{
	size_t cap = q->capacity * 2;
	struct message **slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < q->count; i++)
		slots[i] = q->slots[(q->head + i) % q->capacity];
	free(q->slots);
	q->slots = slots;
	q->capacity = cap;
	q->head = 0;
	return 0;
}

int
queue_push(struct queue *q, struct message *m, int wait_ms)
{
	struct timespec deadline;
	int rc = 0;

	deadline_after(&deadline, wait_ms);
	pthread_mutex_lock(&q->lock);
	/* Waiting here holds up paho's receive thread, so the broker sees
	 * TCP back-pressure rather than a client that left. */
	while (q->count >= q->base && !q->overflowing && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q->room, &q->lock, &deadline);
	if (q->count >= q->base)
		q->overflowing = true;	/* the consumer is stuck: stop waiting */
	if (q->count == q->capacity && grow(q) == -1) {
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	q->slots[(q->head + q->count) % q->capacity] = m;
	q->count++;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

struct message *
queue_pop(struct queue *q)
{
	struct message *m = NULL;

	pthread_mutex_lock(&q->lock);
	if (q->count > 0) {
		m = q->slots[q->head];
		q->head = (q->head + 1) % q->capacity;
		q->count--;
		if (q->count <= q->base / 2)
			q->overflowing = false;
		pthread_cond_signal(&q->room);
	}
	pthread_mutex_unlock(&q->lock);
	return m;
}

bool
queue_overflowing(struct queue *q)
{
	bool b;

	pthread_mutex_lock(&q->lock);
	b = q->overflowing;
	pthread_mutex_unlock(&q->lock);
	return b;
}

size_t
queue_depth(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}
