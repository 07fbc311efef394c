/* Dead letters: events a rule failed for good, kept in the `test`
 * event format so that they can be replayed or published again. */
#ifndef MQTTRULES_DEADLETTER_H
#define MQTTRULES_DEADLETTER_H

struct message;

/* Appends to dir/dead-letters.jsonl from now on. Returns 0 or -1. */
int	deadletter_open(const char *dir);
void	deadletter_close(void);

/* One line: {"at", "time", "topic", "payload" (or "payload_raw" when
 * not JSON), "qos", "retain", "rule", "reason"}. Returns whether it was
 * written (nothing is when not open, as in mqttrules test). */
int	deadletter_write(const char *rule, const struct message *,
	    const char *reason);

#endif
