/* Hands each message to the handlers that match it, and keeps track of
 * it until every matching rule has finished: then it is done in the
 * journal, or a dead letter for each rule that failed. Main thread. */
#ifndef MQTTRULES_DISPATCH_H
#define MQTTRULES_DISPATCH_H

#include <stddef.h>

struct journal;
struct message;
struct rule_set;

/* j may be NULL (no journal, as in mqttrules test). */
void	dispatch_setup(struct journal *j);

/* Takes m over and runs each matching handler once, leaving out the
 * rules named in skip (those that had finished it before a restart). */
void	dispatch_message(struct rule_set *, struct message *m,
	    char *const *skip, size_t nskip);

/* Messages dispatched and not yet finished by every rule. */
size_t	dispatch_in_flight(void);

/* Forgets what is still in flight (at exit, after the rules are
 * freed); it stays unfinished in the journal. */
void	dispatch_forget(void);

#endif
