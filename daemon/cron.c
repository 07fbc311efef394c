/* Cron specs: parsing into value sets, and finding the next matching
 * minute with calendar arithmetic of our own, so that the process time
 * zone never matters. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cron.h"

#define MAX_TEXT	1024
#define NUMBER_CAP	100000	/* above every field's range */
#define MINUTES_PER_DAY	1440
#define DAYS_PER_CYCLE	146097	/* the Gregorian calendar's 400 years */
#define MAX_SECONDS	1e14	/* keeps minute counts exact in a double */

enum { F_MINUTE, F_HOUR, F_DAY, F_MONTH, F_WEEKDAY, NFIELDS };

struct cron_field {
	const char	*name;
	int		 min, max;
};

static const struct cron_field fields[NFIELDS] = {
	{ "minute", 0, 59 },
	{ "hour", 0, 23 },
	{ "day of month", 1, 31 },
	{ "month", 1, 12 },
	{ "day of week", 0, 7 },
};

/* A number as written, kept for messages. */
struct number {
	const char	*text;
	int		 len;
	int		 value;
};

/* One list item, lo-hi/step, as written. */
struct item {
	const char	*text;
	int		 len;
	bool		 star, has_hi, has_step;
	struct number	 lo, hi, step;
};

struct range {
	int		 lo, hi, step;
};

/* A day as cron_next walks the calendar. */
struct date {
	int64_t		 days;		/* since 1970-01-01 */
	int64_t		 year;
	int		 month, mday, wday;
};

static int
field_fail(const struct cron_field *f, char *err, size_t size,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, size, "field %d (%s): ", (int)(f - fields) + 1,
	    f->name);
	if (n >= 0 && (size_t)n < size) {
		va_start(ap, fmt);
		vsnprintf(err + n, size - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *
skip_blanks(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

static const char *
skip_field(const char *p)
{
	while (*p != '\0' && !is_blank(*p))
		p++;
	return p;
}

static int
count_fields(const char *text)
{
	int n = 0;

	for (const char *p = skip_blanks(text); *p != '\0';
	    p = skip_blanks(skip_field(p)))
		n++;
	return n;
}

/* Reads the digits at *p; false when there are none. The value stops
 * growing at NUMBER_CAP, which is out of every range anyway. */
static bool
read_number(const char **p, const char *end, struct number *n)
{
	const char *s = *p;

	n->text = s;
	n->value = 0;
	while (s < end && *s >= '0' && *s <= '9') {
		if (n->value < NUMBER_CAP)
			n->value = n->value * 10 + (*s - '0');
		s++;
	}
	n->len = (int)(s - n->text);
	*p = s;
	return n->len > 0;
}

/* Splits an item into its parts; false when it does not follow the
 * grammar at all. */
static bool
scan_item(const char *s, const char *end, struct item *it)
{
	const char *p = s;

	*it = (struct item){ .text = s, .len = (int)(end - s) };
	if (p < end && *p == '*') {
		it->star = true;
		p++;
	} else {
		if (!read_number(&p, end, &it->lo))
			return false;
		if (p < end && *p == '-') {
			p++;
			if (!(it->has_hi = read_number(&p, end, &it->hi)))
				return false;
		}
	}
	if (p < end && *p == '/') {
		p++;
		if (!(it->has_step = read_number(&p, end, &it->step)))
			return false;
	}
	return p == end;
}

static int
check_value(const struct cron_field *f, const struct number *n, char *err,
    size_t size)
{
	if (n->value >= f->min && n->value <= f->max)
		return 0;
	return field_fail(f, err, size, "%.*s is outside %d-%d", n->len,
	    n->text, f->min, f->max);
}

static int
item_range(const struct cron_field *f, const struct item *it,
    struct range *r, char *err, size_t size)
{
	int span = f->max - f->min + 1;

	if (it->star) {
		r->lo = f->min;
		r->hi = f->max;
	} else {
		if (check_value(f, &it->lo, err, size) == -1 ||
		    (it->has_hi && check_value(f, &it->hi, err, size) == -1))
			return -1;
		r->lo = it->lo.value;
		r->hi = it->has_hi ? it->hi.value :
		    it->has_step ? f->max : r->lo;
	}
	if (r->lo > r->hi)
		return field_fail(f, err, size, "range %.*s runs backwards",
		    it->len, it->text);
	r->step = it->has_step ? it->step.value : 1;
	if (r->step < 1 || r->step > span)
		return field_fail(f, err, size, "step %.*s is outside 1-%d",
		    it->step.len, it->step.text, span);
	return 0;
}

static int
parse_field(const struct cron_field *f, const char *s, const char *end,
    uint64_t *bits, char *err, size_t size)
{
	const char *comma;
	struct item it;
	struct range r;

	*bits = 0;
	for (;;) {
		if ((comma = memchr(s, ',', end - s)) == NULL)
			comma = end;
		if (comma == s)
			return field_fail(f, err, size, "empty item in a list");
		if (!scan_item(s, comma, &it))
			return field_fail(f, err, size, "cannot read \"%.*s\"",
			    it.len, s);
		if (item_range(f, &it, &r, err, size) == -1)
			return -1;
		for (int v = r.lo; v <= r.hi; v += r.step)
			*bits |= (uint64_t)1 << v;
		if (comma == end)
			return 0;
		s = comma + 1;
	}
}

static void
fill_spec(struct cron_spec *cs, const uint64_t *bits, const bool *star)
{
	uint64_t weekdays = bits[F_WEEKDAY];

	cs->minutes = bits[F_MINUTE];
	cs->hours = (uint32_t)bits[F_HOUR];
	cs->days = (uint32_t)bits[F_DAY];
	cs->months = (uint16_t)bits[F_MONTH];
	cs->weekdays = (uint8_t)((weekdays | weekdays >> 7) & 0x7f);
	cs->any_day = star[F_DAY];
	cs->any_weekday = star[F_WEEKDAY];
}

int
cron_parse(const char *text, struct cron_spec *cs, char *err, size_t size)
{
	uint64_t bits[NFIELDS];
	bool star[NFIELDS];
	const char *p, *end;
	int n;

	/* Item lengths must fit an int for the messages. */
	if (strnlen(text, MAX_TEXT + 1) > MAX_TEXT) {
		snprintf(err, size, "longer than %d characters", MAX_TEXT);
		return -1;
	}
	if ((n = count_fields(text)) != NFIELDS) {
		snprintf(err, size, "expected 5 fields (minute hour day month "
		    "weekday), got %d", n);
		return -1;
	}
	p = skip_blanks(text);
	for (int i = 0; i < NFIELDS; i++) {
		end = skip_field(p);
		star[i] = *p == '*';
		if (parse_field(&fields[i], p, end, &bits[i], err, size) == -1)
			return -1;
		p = skip_blanks(end);
	}
	fill_spec(cs, bits, star);
	return 0;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static bool
is_leap(int64_t year)
{
	return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

static int
month_length(int64_t year, int month)
{
	static const int length[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return length[month - 1] + (month == 2 && is_leap(year));
}

/* Whole 400-year cycles are skipped at once, leaving fewer than 400
 * years and 12 months to walk. */
static void
date_of(int64_t days, struct date *d)
{
	int64_t cycles = floor_div(days, DAYS_PER_CYCLE);
	int64_t rest = days - cycles * DAYS_PER_CYCLE;
	int n;

	d->days = days;
	d->year = 1970 + 400 * cycles;
	while (rest >= (n = 365 + is_leap(d->year))) {
		rest -= n;
		d->year++;
	}
	d->month = 1;
	while (rest >= (n = month_length(d->year, d->month))) {
		rest -= n;
		d->month++;
	}
	d->mday = (int)rest + 1;
	/* 1970-01-01 was a Thursday. */
	d->wday = (int)(days + 4 - floor_div(days + 4, 7) * 7);
}

/* Moves d on by n days, at most to the first of the next month. */
static void
advance(struct date *d, int n)
{
	d->days += n;
	d->wday = (d->wday + n) % 7;
	d->mday += n;
	if (d->mday > month_length(d->year, d->month)) {
		d->mday = 1;
		if (++d->month > 12) {
			d->month = 1;
			d->year++;
		}
	}
}

static bool
day_matches(const struct cron_spec *cs, const struct date *d)
{
	bool by_day = cs->days >> d->mday & 1;
	bool by_weekday = cs->weekdays >> d->wday & 1;

	if (cs->any_day || cs->any_weekday)
		return by_day && by_weekday;
	return by_day || by_weekday;
}

static int
next_bit(uint64_t set, int from, int last)
{
	for (int i = from; i <= last; i++)
		if (set >> i & 1)
			return i;
	return -1;
}

/* The first matching minute of a day from its minute `from` on, or -1. */
static int
first_minute(const struct cron_spec *cs, int from)
{
	int m;

	for (int h = from / 60; (h = next_bit(cs->hours, h, 23)) >= 0; h++) {
		m = next_bit(cs->minutes, h == from / 60 ? from % 60 : 0, 59);
		if (m >= 0)
			return h * 60 + m;
	}
	return -1;
}

double
cron_next(const struct cron_spec *cs, double after)
{
	struct date d;
	int64_t first, last;
	int from, m;

	if (!(fabs(after) <= MAX_SECONDS))
		return -1;
	first = (int64_t)floor(after / 60) + 1;
	date_of(floor_div(first, MINUTES_PER_DAY), &d);
	from = (int)(first - d.days * MINUTES_PER_DAY);
	/* Every date falls on every weekday it ever can within a cycle. */
	for (last = d.days + DAYS_PER_CYCLE; d.days <= last; from = 0) {
		if ((cs->months >> d.month & 1) == 0) {
			advance(&d, month_length(d.year, d.month) - d.mday + 1);
			continue;
		}
		if (day_matches(cs, &d) && (m = first_minute(cs, from)) >= 0)
			return (double)(d.days * MINUTES_PER_DAY + m) * 60;
		advance(&d, 1);
	}
	return -1;
}
