/* Named counters with optional sliding windows, shared by all rules. */
#ifndef MQTTRULES_COUNTER_H
#define MQTTRULES_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct counter_store;

struct counter_store	*counter_store_new(void);
void			 counter_store_free(struct counter_store *);

/*
 * Adds n to key at time now (seconds since the epoch). window is in
 * whole seconds, 0 for none. Returns the count after the increment: with
 * a window, the sum of increments made at a second s with
 * floor(now) - s < window (so an increment made exactly window seconds
 * ago no longer counts); without, every increment since the last reset.
 * Returns -1 on allocation failure.
 */
int64_t	counter_incr(struct counter_store *, const char *key, int64_t n,
	    int64_t window, double now);

/* The count as counter_incr would return it, without adding; 0 for an
 * unknown key. */
int64_t	counter_get(struct counter_store *, const char *key, int64_t window,
	    double now);

void	counter_reset(struct counter_store *, const char *key);

/* Forgets every key that starts with prefix; every key when NULL. */
void	counter_clear(struct counter_store *, const char *prefix);

/* Forgets keys idle longer than the largest window they were incremented
 * with; keys never given a window stay. Cheap enough to call each loop
 * turn. */
void	counter_expire(struct counter_store *, double now);

size_t	counter_live_keys(const struct counter_store *);

/* Writes every key to path (through a temporary file and a rename, so
 * a crash leaves the old or the new state whole). Returns 0 or -1. */
int	counter_save(struct counter_store *, const char *path);

/* Adds the keys saved in path; a missing file is no error. Returns 0,
 * or -1 when the file is not a saved state or is cut short. */
int	counter_load(struct counter_store *, const char *path);

/* True when a key changed since the last save. */
bool	counter_dirty(const struct counter_store *);

#endif
