/* Deadlines on the daemon's clock, run by the main loop. Main thread
 * only. */
#ifndef MQTTRULES_TIMER_H
#define MQTTRULES_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef void	timer_fn(void *ctx);

/* Schedules fire(ctx) at when (clock_now() seconds) on behalf of owner
 * (may be NULL). Returns an id > 0, or 0 on allocation failure. */
uint64_t	timer_add(double when, timer_fn *fire, void *ctx,
		    const void *owner);

/* Removes a pending timer and returns its ctx, or NULL when it already
 * fired or never existed. */
void		*timer_cancel(uint64_t id);

/* The earliest deadline, or a negative number when none is pending. */
double		 timer_next(void);

/* Fires, in deadline order, every timer due at now, including ones that
 * callbacks add for a time not after now. Returns how many fired. */
int		 timer_run_due(double now);

/* Cancels every pending timer of owner. */
void		 timer_cancel_owner(const void *owner);

size_t		 timer_pending(void);

#endif
