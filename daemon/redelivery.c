/* Packet identifiers of messages taken, to tell a broker's resend after
 * a reconnect from a new message. */
#include <string.h>

#include "redelivery.h"

static uint64_t
fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len-- > 0) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
hash_message(const char *topic, const void *payload, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv1a(h, topic, strlen(topic) + 1);	/* the NUL parts the two */
	return fnv1a(h, payload, len);
}

void
redelivery_taken(struct redelivery *r, int msgid, uint32_t connection,
    const char *topic, const void *payload, size_t len)
{
	struct redelivery_slot *s = &r->slot[r->next];

	s->hash = hash_message(topic, payload, len);
	s->connection = connection;
	s->msgid = msgid;
	r->next = (r->next + 1) % REDELIVERY_SLOTS;
}

bool
redelivery_seen(const struct redelivery *r, int msgid, uint32_t connection,
    const char *topic, const void *payload, size_t len)
{
	uint64_t h;

	if (msgid == 0)
		return false;
	h = hash_message(topic, payload, len);
	for (size_t i = 0; i < REDELIVERY_SLOTS; i++) {
		const struct redelivery_slot *s = &r->slot[i];

		if (s->msgid == msgid && s->connection < connection &&
		    s->hash == h)
			return true;
	}
	return false;
}
