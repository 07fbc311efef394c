/* The main loop: broker messages, timers and HTTP transfers on one
 * thread. */
#ifndef MQTTRULES_LOOP_H
#define MQTTRULES_LOOP_H

struct config;
struct counter_store;
struct journal;
struct queue;
struct rule_set;

/* Where the loop saves the counters and the keyed timers (a second at
 * most after they change, and at exit); NULL for nowhere. */
void	loop_save_state_to(const char *counters, const char *timers);

/* Wakes the loop from any thread. */
void	loop_wake(void);

/*
 * Runs until SIGTERM or SIGINT, then disconnects from the broker and
 * lets running handlers finish for up to [daemon] shutdown_timeout;
 * what does not finish stays in the journal (j, may be NULL).
 * Returns 0, or -1 when the loop could not be set up.
 */
int	loop_run(const struct config *, struct rule_set *, struct queue *,
	    struct counter_store *, struct journal *);

#endif
