/* The journal: every message is on disk before the broker learns that
 * the daemon has it, and stays there until every matching rule has
 * finished with it. */
#ifndef MQTTRULES_JOURNAL_H
#define MQTTRULES_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct message;

enum journal_sync {
	JOURNAL_SYNC_ALWAYS,	/* fdatasync each arrival before the ack */
	JOURNAL_SYNC_PERIODIC,	/* fdatasync once a second */
	JOURNAL_SYNC_NEVER	/* leave it to the kernel */
};

/* An event that was not finished when the journal was opened. */
struct journal_pending {
	struct message	*m;		/* m->id set; the caller frees */
	char		**done;		/* rules that had finished it */
	size_t		 ndone;
};

struct journal;

/*
 * Opens (creating) dir/journal, reads what it holds, cuts a torn last
 * record, and rewrites it with only the unfinished events. Returns
 * NULL with err set on failure.
 */
struct journal	*journal_open(const char *dir, enum journal_sync,
		    char *err, size_t size);
void		 journal_close(struct journal *);

/* The unfinished events found at open, oldest first; the caller owns
 * the array and what it holds (journal_pending_free). */
struct journal_pending	*journal_take_pending(struct journal *, size_t *n);
void			 journal_pending_free(struct journal_pending *,
			    size_t n);

/* Records an arrival and sets m->id. Durable per the sync mode when it
 * returns 0. Any thread. Returns -1 on a write error. */
int	journal_arrived(struct journal *, struct message *m);

/* Records that rule is done with event id, or (rule NULL) that every
 * rule is. The record is written at the next journal_tick (or sooner,
 * once 64 KiB of them wait), not synced: losing it only means doing the
 * work again. Main thread. */
int	journal_done(struct journal *, uint64_t id, const char *rule);

/* Main thread, once per loop turn: the done records, the periodic sync,
 * and a rewrite once finished events make up most of the file. */
void	journal_tick(struct journal *, double now);

/* Frees the buffers a burst grew once nothing is left in flight (the
 * daemon at rest). Main thread. */
void	journal_rest(struct journal *);

/* For metrics: file size, and the arrival time of the oldest
 * unfinished event (0 when none). */
size_t	journal_bytes(struct journal *);
double	journal_oldest(struct journal *);

int	journal_sync_parse(const char *, enum journal_sync *);

#endif
