/* Packet identifiers of messages taken, to tell a broker's resend after
 * a reconnect from a new message. */
#include <string.h>

#include "redelivery.h"

/* Eight bytes a step: every payload taken is hashed on paho's receive
 * thread, 64 KiB ones included. Not meant to resist chosen inputs: a
 * match also needs the packet identifier. */
static uint64_t
mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w ^ (uint64_t)len << 56) * 0x9e3779b97f4a7c15ULL;
	return h ^ h >> 32;
}

static uint64_t
hash_message(const char *topic, const void *payload, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = mix(h, topic, strlen(topic) + 1);	/* the NUL parts the two */
	return mix(h, payload, len) ^ len;
}

void
redelivery_taken(struct redelivery *r, int msgid, uint32_t connection,
    const char *topic, const void *payload, size_t len)
{
	struct redelivery_slot *s = &r->slot[msgid % REDELIVERY_SLOTS];

	if (msgid <= 0)
		return;
	s->hash = hash_message(topic, payload, len);
	s->connection = connection;
	s->msgid = msgid;
}

bool
redelivery_seen(const struct redelivery *r, int msgid, uint32_t connection,
    const char *topic, const void *payload, size_t len)
{
	const struct redelivery_slot *s;

	if (msgid <= 0)
		return false;
	s = &r->slot[msgid % REDELIVERY_SLOTS];
	return s->msgid == msgid && s->connection + 1 == connection &&
	    s->hash == hash_message(topic, payload, len);
}
