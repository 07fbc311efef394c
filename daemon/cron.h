/* Five-field cron specs, read and matched in UTC. */
#ifndef MQTTRULES_CRON_H
#define MQTTRULES_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bit n of each set stands for the value n. */
struct cron_spec {
	uint64_t	minutes;	/* 0-59 */
	uint32_t	hours;		/* 0-23 */
	uint32_t	days;		/* 1-31 */
	uint16_t	months;		/* 1-12 */
	uint8_t		weekdays;	/* 0-6, Sunday 0; 7 is folded onto 0 */
	/*
	 * Whether each day field began with '*', a step over '*' included.
	 * As in Vixie cron, a day matches when either day field does only
	 * if neither began with '*'; otherwise it must match both.
	 */
	bool		any_day, any_weekday;
};

/*
 * Parses "minute hour day-of-month month day-of-week" separated by
 * blanks. Each field is a comma-separated list of items: '*', n or a-b,
 * each optionally followed by /s to take every s-th value (a/s runs from
 * a to the field's maximum). Returns 0, or -1 with a message in err that
 * names the bad field.
 */
int	cron_parse(const char *text, struct cron_spec *, char *err,
	    size_t size);

/*
 * The first whole minute strictly after `after` that matches, both in
 * seconds since the epoch. Returns -1 (never a whole minute) when no
 * minute ever matches, or when after is not finite or is beyond 1e14
 * seconds either side of the epoch.
 */
double	cron_next(const struct cron_spec *, double after);

#endif
