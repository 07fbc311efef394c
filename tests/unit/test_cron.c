/* Unit tests for cron.c: parsing, messages, and the next matching minute.
 * Expected instants were computed once with Python's datetime. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

#define ALL_MINUTES	0x0fffffffffffffffULL	/* bits 0-59 */
#define ALL_HOURS	0xffffffU		/* bits 0-23 */
#define ALL_DAYS	0xfffffffeU		/* bits 1-31 */
#define ALL_MONTHS	0x1ffeU			/* bits 1-12 */
#define ALL_WEEKDAYS	0x7fU			/* bits 0-6 */

#define JAN_1_2025	1735689600.0		/* 2025-01-01T00:00:00Z */

static struct cron_spec
parse_ok(const char *text)
{
	struct cron_spec cs;
	char err[256] = "";

	if (cron_parse(text, &cs, err, sizeof(err)) != 0)
		fail_msg("\"%s\" failed: %s", text, err);
	return cs;
}

static double
next_of(const char *text, double after)
{
	struct cron_spec cs = parse_ok(text);

	return cron_next(&cs, after);
}

static void
test_parse_star(void **state)
{
	struct cron_spec cs = parse_ok("* * * * *");

	(void)state;
	assert_true(cs.minutes == ALL_MINUTES);
	assert_int_equal(cs.hours, ALL_HOURS);
	assert_int_equal(cs.days, ALL_DAYS);
	assert_int_equal(cs.months, ALL_MONTHS);
	assert_int_equal(cs.weekdays, ALL_WEEKDAYS);
	assert_true(cs.any_day);
	assert_true(cs.any_weekday);
}

static void
test_parse_numbers(void **state)
{
	struct cron_spec cs = parse_ok("5 4 3 2 1");

	(void)state;
	assert_true(cs.minutes == 1ULL << 5);
	assert_int_equal(cs.hours, 1U << 4);
	assert_int_equal(cs.days, 1U << 3);
	assert_int_equal(cs.months, 1U << 2);
	assert_int_equal(cs.weekdays, 1U << 1);
	assert_false(cs.any_day);
	assert_false(cs.any_weekday);

	cs = parse_ok("59 23 31 12 6");
	assert_true(cs.minutes == 1ULL << 59);
	assert_int_equal(cs.hours, 1U << 23);
	assert_int_equal(cs.days, 1U << 31);
	assert_int_equal(cs.months, 1U << 12);
	assert_int_equal(cs.weekdays, 1U << 6);

	/* Leading zeros and any run of blanks are fine. */
	cs = parse_ok(" \t007  00\t01 1\t0 ");
	assert_true(cs.minutes == 1ULL << 7);
	assert_int_equal(cs.hours, 1U);
	assert_int_equal(cs.days, 1U << 1);
}

static void
test_parse_ranges_lists(void **state)
{
	struct cron_spec cs = parse_ok("10-12 0-3 1-5 6-8 1-5");

	(void)state;
	assert_true(cs.minutes == 0x7ULL << 10);
	assert_int_equal(cs.hours, 0xfU);
	assert_int_equal(cs.days, 0x3eU);
	assert_int_equal(cs.months, 0x7U << 6);
	assert_int_equal(cs.weekdays, 0x3eU);

	cs = parse_ok("1,2,30 0,12 1,15 1,7,12 0,6");
	assert_true(cs.minutes == (1ULL << 1 | 1ULL << 2 | 1ULL << 30));
	assert_int_equal(cs.hours, 1U | 1U << 12);
	assert_int_equal(cs.days, 1U << 1 | 1U << 15);
	assert_int_equal(cs.months, 1U << 1 | 1U << 7 | 1U << 12);
	assert_int_equal(cs.weekdays, 1U | 1U << 6);

	/* Items of every kind in one list; overlaps are harmless. */
	cs = parse_ok("0,*/20,7-9,8,50/5 * * * *");
	assert_true(cs.minutes == (1ULL << 0 | 1ULL << 20 | 1ULL << 40 |
	    0x7ULL << 7 | 1ULL << 50 | 1ULL << 55));
}

static void
test_parse_steps(void **state)
{
	struct cron_spec cs = parse_ok("*/15 */6 */10 */3 */2");

	(void)state;
	assert_true(cs.minutes == (1ULL | 1ULL << 15 | 1ULL << 30 |
	    1ULL << 45));
	assert_int_equal(cs.hours, 1U | 1U << 6 | 1U << 12 | 1U << 18);
	assert_int_equal(cs.days, 1U << 1 | 1U << 11 | 1U << 21 | 1U << 31);
	assert_int_equal(cs.months, 1U << 1 | 1U << 4 | 1U << 7 | 1U << 10);
	assert_int_equal(cs.weekdays, 1U | 1U << 2 | 1U << 4 | 1U << 6);
	/* A step over '*' still counts as '*' for the day rule. */
	assert_true(cs.any_day);
	assert_true(cs.any_weekday);

	cs = parse_ok("10-30/10 1-10/4 2-9/7 1-12/12 1-5/2");
	assert_true(cs.minutes == (1ULL << 10 | 1ULL << 20 | 1ULL << 30));
	assert_int_equal(cs.hours, 1U << 1 | 1U << 5 | 1U << 9);
	assert_int_equal(cs.days, 1U << 2 | 1U << 9);
	assert_int_equal(cs.months, 1U << 1);
	assert_int_equal(cs.weekdays, 1U << 1 | 1U << 3 | 1U << 5);

	/* a/n runs from a to the field's maximum. */
	cs = parse_ok("50/5 20/2 28/2 11/1 3/2");
	assert_true(cs.minutes == (1ULL << 50 | 1ULL << 55));
	assert_int_equal(cs.hours, 1U << 20 | 1U << 22);
	assert_int_equal(cs.days, 1U << 28 | 1U << 30);
	assert_int_equal(cs.months, 1U << 11 | 1U << 12);
	/* 3, 5, 7: and 7 is Sunday. */
	assert_int_equal(cs.weekdays, 1U | 1U << 3 | 1U << 5);

	/* A step as wide as the field keeps only the first value. */
	cs = parse_ok("*/60 */24 */31 */12 */8");
	assert_true(cs.minutes == 1ULL);
	assert_int_equal(cs.hours, 1U);
	assert_int_equal(cs.days, 1U << 1);
	assert_int_equal(cs.months, 1U << 1);
	assert_int_equal(cs.weekdays, 1U);
}

static void
test_parse_sunday(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("* * * * 7").weekdays, 1U);
	assert_int_equal(parse_ok("* * * * 0").weekdays, 1U);
	assert_int_equal(parse_ok("* * * * 5-7").weekdays,
	    1U | 1U << 5 | 1U << 6);
	assert_int_equal(parse_ok("* * * * 0-7").weekdays, ALL_WEEKDAYS);
	assert_int_equal(parse_ok("* * * * 6/1").weekdays, 1U | 1U << 6);
}

static void
check_error(const char *text, const char *message)
{
	struct cron_spec cs;
	char err[256] = "";

	if (cron_parse(text, &cs, err, sizeof(err)) != -1)
		fail_msg("\"%s\" was accepted", text);
	assert_string_equal(err, message);
}

static void
test_parse_range_errors(void **state)
{
	(void)state;
	check_error("60 * * * *", "field 1 (minute): 60 is outside 0-59");
	check_error("0 24 * * *", "field 2 (hour): 24 is outside 0-23");
	check_error("* * 0 * *", "field 3 (day of month): 0 is outside 1-31");
	check_error("* * 32 * *",
	    "field 3 (day of month): 32 is outside 1-31");
	check_error("* * * 0 *", "field 4 (month): 0 is outside 1-12");
	check_error("* * * 13 *", "field 4 (month): 13 is outside 1-12");
	check_error("* * * * 8", "field 5 (day of week): 8 is outside 0-7");
	check_error("1-70 * * * *", "field 1 (minute): 70 is outside 0-59");
	check_error("0 1,2,99 * * *", "field 2 (hour): 99 is outside 0-23");
	check_error("99999999999999999999 * * * *",
	    "field 1 (minute): 99999999999999999999 is outside 0-59");
	check_error("30-10 * * * *", "field 1 (minute): range 30-10 runs "
	    "backwards");
	check_error("* * * 12-1/2 *", "field 4 (month): range 12-1/2 runs "
	    "backwards");
}

static void
test_parse_step_errors(void **state)
{
	(void)state;
	check_error("*/0 * * * *", "field 1 (minute): step 0 is outside 1-60");
	check_error("* 1-5/0 * * *", "field 2 (hour): step 0 is outside 1-24");
	check_error("* * 5/00 * *",
	    "field 3 (day of month): step 00 is outside 1-31");
	check_error("*/61 * * * *",
	    "field 1 (minute): step 61 is outside 1-60");
	check_error("* * * * */9",
	    "field 5 (day of week): step 9 is outside 1-8");
}

static void
test_parse_empty_errors(void **state)
{
	(void)state;
	check_error("1,,2 * * * *", "field 1 (minute): empty item in a list");
	check_error("* , * * *", "field 2 (hour): empty item in a list");
	check_error("* * 5, * *",
	    "field 3 (day of month): empty item in a list");
	check_error("* * * ,5 *", "field 4 (month): empty item in a list");
}

static void
test_parse_count_errors(void **state)
{
	(void)state;
	check_error("", "expected 5 fields (minute hour day month weekday), "
	    "got 0");
	check_error(" \t ", "expected 5 fields (minute hour day month "
	    "weekday), got 0");
	check_error("* * * *", "expected 5 fields (minute hour day month "
	    "weekday), got 4");
	check_error("0 * * * * *", "expected 5 fields (minute hour day month "
	    "weekday), got 6");
	check_error("@daily", "expected 5 fields (minute hour day month "
	    "weekday), got 1");
}

static void
test_parse_garbage(void **state)
{
	(void)state;
	check_error("a * * * *", "field 1 (minute): cannot read \"a\"");
	check_error("5x * * * *", "field 1 (minute): cannot read \"5x\"");
	check_error("* 1- * * *", "field 2 (hour): cannot read \"1-\"");
	check_error("* -5 * * *", "field 2 (hour): cannot read \"-5\"");
	check_error("*/ * * * *", "field 1 (minute): cannot read \"*/\"");
	check_error("1/2/3 * * * *",
	    "field 1 (minute): cannot read \"1/2/3\"");
	check_error("** * * * *", "field 1 (minute): cannot read \"**\"");
	check_error("1-2-3 * * * *",
	    "field 1 (minute): cannot read \"1-2-3\"");
	check_error("*-5 * * * *", "field 1 (minute): cannot read \"*-5\"");
	check_error("+5 * * * *", "field 1 (minute): cannot read \"+5\"");
	check_error("5.0 * * * *", "field 1 (minute): cannot read \"5.0\"");
	check_error("*/5,x * * * *", "field 1 (minute): cannot read \"x\"");
	check_error("* * * jan *", "field 4 (month): cannot read \"jan\"");
	check_error("* * * * mon",
	    "field 5 (day of week): cannot read \"mon\"");
	check_error("* * * * *\n", "field 5 (day of week): cannot read "
	    "\"*\n\"");
}

/* Messages are cut to the buffer, never past it. */
static void
test_parse_small_buffer(void **state)
{
	struct cron_spec cs;
	char err[8], big[1100];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(cron_parse("0 24 * * *", &cs, err, sizeof(err)), -1);
	assert_string_equal(err, "field 2");
	assert_int_equal(cron_parse("* * *", &cs, err, sizeof(err)), -1);
	assert_string_equal(err, "expecte");
	assert_int_equal(cron_parse("0 24 * * *", &cs, NULL, 0), -1);

	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "* * * * *", 9);
	check_error(big, "longer than 1024 characters");
	big[1024] = '\0';
	assert_int_equal(cron_parse(big, &cs, NULL, 0), 0);
}

static void
test_next_examples(void **state)
{
	(void)state;
	/* 2025-01-01T00:03:00Z -> 2025-01-01T00:05:00Z */
	assert_true(next_of("*/5 * * * *", 1735689780) == 1735689900);
	/* Friday 2025-01-03T09:00:00Z -> Monday 2025-01-06T09:00:00Z */
	assert_true(next_of("0 9 * * 1-5", 1735894800) == 1736154000);
	/* 2025-01-31T12:00:00Z -> 2025-02-01T02:30:00Z */
	assert_true(next_of("30 2 1 * *", 1738324800) == 1738377000);
	/* 2025-12-01T02:30:00Z -> 2026-01-01T02:30:00Z, across a year */
	assert_true(next_of("30 2 1 * *", 1764556200) == 1767234600);
	/* 2025-01-01T00:00:00Z -> 2025-12-31T23:59:00Z */
	assert_true(next_of("59 23 31 12 *", JAN_1_2025) == 1767225540);
}

static void
test_next_leap_days(void **state)
{
	(void)state;
	/* 2025-01-01 -> 2028-02-29T00:00:00Z */
	assert_true(next_of("0 0 29 2 *", JAN_1_2025) == 1835395200);
	/* 2096-03-01 -> 2104-02-29T00:00:00Z: 2100 is not a leap year */
	assert_true(next_of("0 0 29 2 *", 3981398400.0) == 4233686400.0);
	/* 2399-03-01 -> 2400-02-29T00:00:00Z: 2400 is one */
	assert_true(next_of("0 0 29 2 *", 13543027200.0) == 13574563200.0);
}

/* Before the epoch the calendar works the same. */
static void
test_next_before_epoch(void **state)
{
	(void)state;
	/* 1969-06-01 -> 1970-01-01T00:00:00Z */
	assert_true(next_of("0 0 1 1 *", -18489600) == 0);
	/* 1900-03-01 -> 1904-02-29T00:00:00Z */
	assert_true(next_of("0 0 29 2 *", -2203891200.0) == -2077747200.0);
	/* 1899-06-01 -> 1899-12-31T23:59:00Z */
	assert_true(next_of("59 23 31 12 *", -2227478400.0) ==
	    -2208988860.0);
}

static void
test_next_sunday(void **state)
{
	(void)state;
	/* 2025-01-01 -> Sunday 2025-01-05T00:00:00Z, both ways */
	assert_true(next_of("0 0 * * 0", JAN_1_2025) == 1736035200);
	assert_true(next_of("0 0 * * 7", JAN_1_2025) == 1736035200);
}

static void
test_next_day_rule(void **state)
{
	(void)state;
	/* Either day field: Friday 2025-01-03, Friday 2025-01-10, then
	 * Monday 2025-01-13. */
	assert_true(next_of("0 0 13 * 5", JAN_1_2025) == 1735862400);
	assert_true(next_of("0 0 13 * 5", 1735862400) == 1736467200);
	assert_true(next_of("0 0 13 * 5", 1736467200) == 1736726400);
	/* 1-31 is a restriction too: any day, so Thursday 2025-01-02. */
	assert_true(next_of("0 0 1-31 * 1", JAN_1_2025) == 1735776000);
	/* A step over '*' is not: odd days that are Mondays, the first
	 * 2025-01-13. */
	assert_true(next_of("0 0 */2 * 1", JAN_1_2025) == 1736726400);
	/* Only one field restricted: it alone decides. */
	assert_true(next_of("0 0 13 * *", JAN_1_2025) == 1736726400);
	assert_true(next_of("0 0 * * 5", JAN_1_2025) == 1735862400);
}

static void
test_next_strictly_after(void **state)
{
	(void)state;
	/* Monday 2025-01-06T09:00:00Z -> Tuesday 2025-01-07T09:00:00Z */
	assert_true(next_of("0 9 * * 1-5", 1736154000) == 1736240400);
	/* 00:00 -> 00:05, 00:04:59.5 -> 00:05, 00:05:00.25 -> 00:10 */
	assert_true(next_of("*/5 * * * *", JAN_1_2025) == 1735689900);
	assert_true(next_of("*/5 * * * *", 1735689899.5) == 1735689900);
	assert_true(next_of("*/5 * * * *", 1735689900.25) == 1735690200);
	/* 00:04 -> 00:05 */
	assert_true(next_of("* * * * *", 1735689840) == 1735689900);
	/* Just below a whole minute still gets that minute. */
	assert_true(next_of("* * * * *", nextafter(1735689900.0, 0)) ==
	    1735689900);
}

static void
test_next_never(void **state)
{
	(void)state;
	assert_true(next_of("0 0 30 2 *", JAN_1_2025) == -1);
	assert_true(next_of("0 0 31 4,6,9,11 *", JAN_1_2025) == -1);
	assert_true(next_of("* * * * *", NAN) == -1);
	assert_true(next_of("* * * * *", INFINITY) == -1);
	assert_true(next_of("* * * * *", -INFINITY) == -1);
	assert_true(next_of("* * * * *", 1e15) == -1);
}

/* Whether t matches, by gmtime_r and the spec's sets: a reference
 * sharing no calendar code with cron.c. */
static int
matches(const struct cron_spec *cs, time_t t)
{
	struct tm tm;
	int by_day, by_weekday, day;

	gmtime_r(&t, &tm);
	by_day = cs->days >> tm.tm_mday & 1;
	by_weekday = cs->weekdays >> tm.tm_wday & 1;
	day = cs->any_day || cs->any_weekday ? by_day && by_weekday :
	    by_day || by_weekday;
	return day && (cs->minutes >> tm.tm_min & 1) &&
	    cs->hours >> tm.tm_hour & 1 && cs->months >> (tm.tm_mon + 1) & 1;
}

/* Every minute from 2023-12-25 to 2025-01-05, against the chain of
 * cron_next answers. */
static void
test_next_against_reference(void **state)
{
	static const char *specs[] = {
		"*/7 3-5 * * *", "0 0 13 * 5", "0 0 */2 * 1",
		"15 10 29 2 *", "0 12 1-7 * 1", "59 23 31 * *",
		"*/30 */5 1,15 1,6 0", "0 0 * * 7",
	};
	const time_t start = 1703462400, end = 1736035200;
	struct cron_spec cs;
	double want;
	int found;

	(void)state;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		cs = parse_ok(specs[i]);
		want = cron_next(&cs, start);
		found = 0;
		for (time_t t = start + 60; t <= end; t += 60) {
			if (!matches(&cs, t))
				continue;
			if (want != (double)t)
				fail_msg("%s: %.0f, not %lld", specs[i], want,
				    (long long)t);
			want = cron_next(&cs, want);
			found++;
		}
		assert_true(want > end);
		assert_true(found > 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_star),
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_parse_ranges_lists),
		cmocka_unit_test(test_parse_steps),
		cmocka_unit_test(test_parse_sunday),
		cmocka_unit_test(test_parse_range_errors),
		cmocka_unit_test(test_parse_step_errors),
		cmocka_unit_test(test_parse_empty_errors),
		cmocka_unit_test(test_parse_count_errors),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_parse_small_buffer),
		cmocka_unit_test(test_next_examples),
		cmocka_unit_test(test_next_leap_days),
		cmocka_unit_test(test_next_before_epoch),
		cmocka_unit_test(test_next_sunday),
		cmocka_unit_test(test_next_day_rule),
		cmocka_unit_test(test_next_strictly_after),
		cmocka_unit_test(test_next_never),
		cmocka_unit_test(test_next_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
