/* Unit tests for topic.c: matching, validity, overlap, reduction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define SMALL_MAX	512	/* strings in a small universe */

struct match_case {
	const char	*filter;
	const char	*topic;
	bool		 match;
};

struct pair_case {
	const char	*a;
	const char	*b;
	bool		 overlap;
};

/* Topics the coverage checks of topic_subs_reduce run over. */
static const char *const sample_topics[] = {
	"a", "a/", "a/b", "a/b/c", "a/c", "a//c", "a/b/c/d", "a/x/c",
	"b", "b/c", "c/d", "c", "/", "/x", "x", "ab/c", "$SYS/x",
	"$SYS/broker/load", "$SYS", "kompose", "kompose/analytics",
	"kompose/analytics/x", "kompose/vault/security/failed", "q/r/s/t",
	"a/b/x", "d/e/f", "d/e", "d/f/f",
};

static void
test_match_table(void **state)
{
	static const struct match_case cases[] = {
		/* The cases the contract spells out. */
		{ "a/#", "a", true },
		{ "a/#", "a/", true },
		{ "a/#", "ab/c", false },
		{ "a/+/c", "a//c", true },
		{ "a/+", "a", false },
		{ "a/+", "a/", true },
		{ "+/x", "/x", true },
		{ "#", "$SYS/x", false },
		{ "+/x", "$SYS/x", false },
		{ "$SYS/#", "$SYS/x", true },
		/* Exact filters. */
		{ "a/b", "a/b", true },
		{ "a/b", "a/b/", false },
		{ "a/b", "a/bc", false },
		{ "a/b", "a", false },
		{ "a/b/c", "a/b", false },
		{ "A", "a", false },
		/* Empty levels. */
		{ "/", "/", true },
		{ "//", "/", false },
		{ "a//b", "a//b", true },
		{ "a//b", "a/b", false },
		{ "+/+", "/", true },
		{ "/+", "/", true },
		{ "/#", "/", true },
		{ "/#", "a", false },
		/* '#' alone. */
		{ "#", "a", true },
		{ "#", "/", true },
		{ "#", "a/b/c", true },
		{ "#", "$SYS", false },
		{ "#", "x$", true },
		/* '+' alone and combined. */
		{ "+", "a", true },
		{ "+", "a/b", false },
		{ "+", "/", false },
		{ "+", "$SYS", false },
		{ "+/+", "a", false },
		{ "+/+", "a/b", true },
		{ "+/+", "a/b/c", false },
		{ "+/#", "a", true },
		{ "+/b/#", "a/b", true },
		{ "+/b/#", "a/c", false },
		{ "a/+/+/d", "a/b/c/d", true },
		{ "a/+/#", "a/b", true },
		{ "a/+/#", "a", false },
		/* '$' only matters at the first level. */
		{ "$SYS/+", "$SYS/x", true },
		{ "a/+", "a/$x", true },
		{ "a/#", "a/$x/y", true },
		/* A filter is matched against literal topic characters. */
		{ "a/b", "a/+", false },
		{ "a/+", "a/+", true },
		/* $share is an ordinary level here. */
		{ "$share/g/a", "$share/g/a", true },
		{ "#", "$share/g/a", false },
		/* No topic is empty. */
		{ "#", "", false },
		{ "+", "", false },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (topic_matches(cases[i].filter, cases[i].topic) ==
		    cases[i].match)
			continue;
		fail_msg("filter '%s' topic '%s': expected %s",
		    cases[i].filter, cases[i].topic,
		    cases[i].match ? "match" : "no match");
	}
}

static void
test_match_long(void **state)
{
	char	topic[4096], filter[4096];
	size_t	i, len;

	(void)state;
	for (i = 0; i + 2 < sizeof(topic); i += 2)
		memcpy(topic + i, "x/", 2);
	topic[i] = 'y';
	topic[i + 1] = '\0';
	len = i + 1;
	memcpy(filter, topic, sizeof(filter));
	assert_true(topic_matches(filter, topic));
	for (i = 0; i < len; i += 2)
		filter[i] = '+';
	assert_true(topic_matches(filter, topic));
	assert_false(topic_matches(filter + 2, topic));
	strcpy(filter + strlen(filter) - 1, "#");
	assert_true(topic_matches(filter, topic));
	topic[strlen(topic) - 1] = 'z';
	assert_true(topic_matches("x/x/x/#", topic));
	assert_false(topic_matches("x/x/y/#", topic));
}

static void
test_valid(void **state)
{
	static const char *const valid[] = {
		"a", "/", "a/b", "a/", "/a", "#", "+", "+/+", "a/#", "a/+/c",
		"+/#", "$SYS/#", "$share/g/a/#", "a//b", " ", "a b/c",
	};
	static const char *const invalid[] = {
		"", "a/b#", "a/#/b", "a+", "+a", "a/+b", "#/a", "##", "++",
		"a/#/", "a/b/c#", "#a",
	};
	char	*big;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if (!topic_filter_valid(valid[i]))
			fail_msg("'%s' should be valid", valid[i]);
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		if (topic_filter_valid(invalid[i]))
			fail_msg("'%s' should be invalid", invalid[i]);

	big = malloc(65537);
	assert_non_null(big);
	memset(big, 'a', 65535);
	big[65535] = '\0';
	assert_true(topic_filter_valid(big));
	strcpy(big + 65535, "a");
	assert_false(topic_filter_valid(big));
	free(big);
}

/* Overlap must agree with the sample topics: a topic matching both
 * filters means they overlap. */
static void
check_overlap_witnessed(const char *a, const char *b)
{
	size_t	i, n = sizeof(sample_topics) / sizeof(sample_topics[0]);

	for (i = 0; i < n; i++) {
		if (topic_matches(a, sample_topics[i]) &&
		    topic_matches(b, sample_topics[i]) &&
		    !topic_filters_overlap(a, b))
			fail_msg("'%s' and '%s' both match '%s'", a, b,
			    sample_topics[i]);
	}
}

static void
test_overlap(void **state)
{
	static const struct pair_case cases[] = {
		{ "a", "a", true },
		{ "a", "b", false },
		{ "a/#", "a", true },
		{ "a/#", "a/b/c", true },
		{ "a/#", "ab", false },
		{ "#", "a/b", true },
		{ "#", "$SYS/#", false },
		{ "#", "$SYS", false },
		{ "+/x", "$SYS/x", false },
		{ "+", "$SYS", false },
		{ "+/#", "$SYS/x", false },
		{ "$SYS/#", "$SYS/x", true },
		{ "$SYS/+", "$SYS/x", true },
		{ "+", "+", true },
		{ "#", "+", true },
		{ "+", "a/b", false },
		{ "+/+", "a", false },
		{ "+/+", "a/#", true },
		{ "+", "a/#", true },
		{ "a/+/c", "a/b/#", true },
		{ "a/+/c", "a/b/d", false },
		{ "a/+", "+/b", true },
		{ "a/+/c", "+/b/d", false },
		{ "a/b/c", "a/b", false },
		{ "a/b", "a/b/+", false },
		{ "a/b", "a/b/#", true },
		{ "a/", "a/#", true },
		{ "a/", "a", false },
		{ "/", "+/+", true },
		/* They could only share the empty topic, which none is. */
		{ "+", "/#", false },
		{ "/#", "/", true },
		{ "+/#", "/#", true },
		{ "kompose/#", "kompose/analytics/#", true },
	};
	const struct pair_case	*c;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		if (topic_filters_overlap(c->a, c->b) != c->overlap ||
		    topic_filters_overlap(c->b, c->a) != c->overlap)
			fail_msg("'%s' and '%s': expected %s", c->a, c->b,
			    c->overlap ? "overlap" : "no overlap");
		check_overlap_witnessed(c->a, c->b);
	}
}

static void
check_generalize(const char *a, const char *b, const char *want)
{
	char	*g;
	size_t	 i, n = sizeof(sample_topics) / sizeof(sample_topics[0]);

	g = topic_filter_generalize(a, b);
	assert_non_null(g);
	assert_string_equal(g, want);
	assert_true(topic_filter_valid(g));
	for (i = 0; i < n; i++) {
		if ((topic_matches(a, sample_topics[i]) ||
		    topic_matches(b, sample_topics[i])) &&
		    !topic_matches(g, sample_topics[i]))
			fail_msg("'%s' misses '%s'", g, sample_topics[i]);
	}
	free(g);
	g = topic_filter_generalize(b, a);
	assert_non_null(g);
	assert_string_equal(g, want);
	free(g);
}

static void
test_generalize(void **state)
{
	(void)state;
	check_generalize("a", "a", "a");
	check_generalize("a", "a/b", "a/#");
	check_generalize("a/+/c", "a/b/#", "a/+/#");
	check_generalize("a/b", "a/c", "a/+");
	check_generalize("a/b/c", "a/x/c", "a/+/c");
	check_generalize("a/b", "c/d", "+/+");
	check_generalize("a/b/c", "a/b", "a/b/#");
	check_generalize("a/b/c/d", "a/x", "a/+/#");
	check_generalize("#", "a/b", "#");
	check_generalize("a/#", "a/b/c", "a/#");
	check_generalize("a/", "a", "a/#");
	check_generalize("a//c", "a/b/c", "a/+/c");
	check_generalize("$SYS/x", "$SYS/y", "$SYS/+");
	check_generalize("kompose/#", "kompose/analytics/#", "kompose/#");
	check_generalize("+", "+/+", "+/#");
}

static void
subs_set(struct topic_sub *subs, const char *const *filters,
    const int *qos, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		subs[i].filter = strdup(filters[i]);
		assert_non_null(subs[i].filter);
		subs[i].qos = qos[i];
	}
}

static void
subs_free(struct topic_sub *subs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(subs[i].filter);
}

/* No two outputs overlap, and each of topics[0..nt) an input matched
 * some output matches, at a QoS no lower than the input's. */
static void
check_reduced(const char *const *in, const int *inqos, size_t nin,
    const struct topic_sub *out, size_t nout, const char *const *topics,
    size_t nt)
{
	size_t	i, j, t;
	bool	covered;

	for (i = 0; i < nout; i++)
		for (j = i + 1; j < nout; j++)
			if (topic_filters_overlap(out[i].filter,
			    out[j].filter))
				fail_msg("'%s' and '%s' overlap",
				    out[i].filter, out[j].filter);
	for (t = 0; t < nt; t++) {
		for (i = 0; i < nin; i++) {
			if (!topic_matches(in[i], topics[t]))
				continue;
			covered = false;
			for (j = 0; j < nout; j++)
				if (topic_matches(out[j].filter, topics[t]) &&
				    out[j].qos >= inqos[i])
					covered = true;
			if (!covered)
				fail_msg("'%s' lost '%s'", in[i], topics[t]);
		}
	}
}

static void
check_reduce(const char *const *in, const int *qos, size_t n,
    const char *const *want, const int *wantqos, size_t nwant)
{
	struct topic_sub	subs[16];
	size_t			i, nout = n;

	assert_true(n <= 16);
	subs_set(subs, in, qos, n);
	assert_int_equal(topic_subs_reduce(subs, &nout), 0);
	check_reduced(in, qos, n, subs, nout, sample_topics,
	    NELEM(sample_topics));
	if (want != NULL) {
		assert_int_equal(nout, nwant);
		for (i = 0; i < nwant; i++) {
			assert_string_equal(subs[i].filter, want[i]);
			assert_int_equal(subs[i].qos, wantqos[i]);
		}
	}
	subs_free(subs, nout);
}

static void
test_reduce_exact(void **state)
{
	static const char *const k_in[] = { "kompose/#",
	    "kompose/analytics/#" };
	static const int k_qos[] = { 0, 1 };
	static const char *const k_out[] = { "kompose/#" };
	static const int k_outqos[] = { 1 };
	static const char *const a_in[] = { "a/+/c", "a/b/#" };
	static const int a_qos[] = { 2, 0 };
	static const char *const a_out[] = { "a/+/#" };
	static const int a_outqos[] = { 2 };
	static const char *const d_in[] = { "a/b", "c/d" };
	static const int d_qos[] = { 1, 0 };
	static const char *const s_in[] = { "a/b", "a/b", "x", "a/b" };
	static const int s_qos[] = { 0, 2, 1, 1 };
	static const char *const s_out[] = { "a/b", "x" };
	static const int s_outqos[] = { 2, 1 };

	(void)state;
	check_reduce(k_in, k_qos, 2, k_out, k_outqos, 1);
	check_reduce(a_in, a_qos, 2, a_out, a_outqos, 1);
	check_reduce(d_in, d_qos, 2, d_in, d_qos, 2);
	check_reduce(s_in, s_qos, 4, s_out, s_outqos, 2);
}

/* A merge can widen a filter into one overlapping a filter it was
 * already compared with: "a/b/x" misses "a/c", but once merged with
 * "a/b/#" and "a/+/c" it has become "a/+/#", which does not. */
static void
test_reduce_cascade(void **state)
{
	static const char *const in[] = { "a/b/x", "a/c", "d/e",
	    "a/b/#", "a/+/c", "d/+/f", "$SYS/x", "#" };
	static const int qos[] = { 0, 1, 0, 0, 2, 1, 0, 0 };
	static const char *const out[] = { "#", "$SYS/x" };
	static const int outqos[] = { 2, 0 };
	static const char *const in2[] = { "a/b/x", "a/c", "a/b/#",
	    "a/+/c", "$SYS/a", "$SYS/b", "d/e" };
	static const int qos2[] = { 0, 1, 0, 2, 1, 0, 0 };
	static const char *const out2[] = { "a/+/#", "$SYS/a", "$SYS/b",
	    "d/e" };
	static const int outqos2[] = { 2, 1, 0, 0 };

	(void)state;
	check_reduce(in, qos, NELEM(in), out, outqos, NELEM(out));
	check_reduce(in2, qos2, NELEM(in2), out2, outqos2, NELEM(out2));
}

static void
test_reduce_many(void **state)
{
	static const char *const in[] = { "a", "a/b", "a/b/c", "b/c",
	    "+/c", "c/d", "c", "/x", "+/x", "kompose/analytics/#",
	    "kompose/vault/+/failed", "q/r/s/t", "q/+/s/#", "d/e/f",
	    "d/+/f", "$SYS/broker/load" };
	static const int qos[] = { 0, 1, 2, 0, 1, 0, 0, 1, 0, 2, 1, 0, 1,
	    0, 2, 1 };
	(void)state;
	check_reduce(in, qos, NELEM(in), NULL, NULL, 0);
	check_reduce(in, qos, 0, in, qos, 0);
}

/*
 * A small universe, checked exhaustively: every filter of up to three
 * levels and every topic of up to four drawn from a few level values,
 * so that any two filters that overlap share one of these topics.
 */
struct universe {
	char		 text[SMALL_MAX][16];
	const char	*filters[SMALL_MAX];
	const char	*topics[SMALL_MAX];
	size_t		 nfilters;
	size_t		 ntopics;
};

/* Appends every join of 1..depth values of lv[0..nlv) to u->text. */
static size_t
universe_join(struct universe *u, size_t at, const char *const *lv,
    size_t nlv, size_t depth)
{
	size_t	d, k, idx, x, count;

	for (d = 1, count = nlv; d <= depth; d++, count *= nlv) {
		for (idx = 0; idx < count; idx++, at++) {
			assert_true(at < SMALL_MAX);
			u->text[at][0] = '\0';
			for (x = idx, k = 0; k < d; k++, x /= nlv) {
				if (k > 0)
					strcat(u->text[at], "/");
				strcat(u->text[at], lv[x % nlv]);
			}
		}
	}
	return at;
}

static void
universe_build(struct universe *u)
{
	static const char *const flv[] = { "a", "", "$s", "+", "#" };
	static const char *const tlv[] = { "a", "", "$s", "b" };
	size_t	i, nf;

	nf = universe_join(u, 0, flv, NELEM(flv), 3);
	u->nfilters = 0;
	for (i = 0; i < nf; i++)
		if (topic_filter_valid(u->text[i]))
			u->filters[u->nfilters++] = u->text[i];
	u->ntopics = universe_join(u, nf, tlv, NELEM(tlv), 4) - nf;
	for (i = 0; i < u->ntopics; i++)
		u->topics[i] = u->text[nf + i];
}

static bool
universe_shared(const struct universe *u, const char *a, const char *b)
{
	size_t	t;

	for (t = 0; t < u->ntopics; t++)
		if (topic_matches(a, u->topics[t]) &&
		    topic_matches(b, u->topics[t]))
			return true;
	return false;
}

static void
check_covers(const struct universe *u, const char *g, const char *a,
    const char *b)
{
	size_t	t;

	for (t = 0; t < u->ntopics; t++)
		if ((topic_matches(a, u->topics[t]) ||
		    topic_matches(b, u->topics[t])) &&
		    !topic_matches(g, u->topics[t]))
			fail_msg("'%s' from '%s' and '%s' misses '%s'", g, a,
			    b, u->topics[t]);
}

static void
test_overlap_exhaustive(void **state)
{
	static struct universe	 u;
	const char		*a, *b;
	char			*g;
	size_t			 i, j;

	(void)state;
	universe_build(&u);
	assert_true(u.nfilters > 100);
	for (i = 0; i < u.nfilters; i++) {
		for (j = 0; j < u.nfilters; j++) {
			a = u.filters[i];
			b = u.filters[j];
			if (topic_filters_overlap(a, b) !=
			    universe_shared(&u, a, b))
				fail_msg("'%s' and '%s' overlap wrongly", a, b);
			if (!topic_filters_overlap(a, b))
				continue;
			g = topic_filter_generalize(a, b);
			assert_non_null(g);
			assert_true(topic_filter_valid(g));
			check_covers(&u, g, a, b);
			free(g);
		}
	}
}

/* Reduces pseudo-random lists drawn from the small universe. */
static void
test_reduce_random(void **state)
{
	static struct universe	 u;
	struct topic_sub	 subs[8];
	const char		*in[8];
	int			 qos[8];
	uint32_t		 seed = 12345;
	size_t			 round, i, n, nout;

	(void)state;
	universe_build(&u);
	for (round = 0; round < 3000; round++) {
		seed = seed * 1103515245u + 12345u;
		n = 2 + (seed >> 16) % 7;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = u.filters[(seed >> 8) % u.nfilters];
			qos[i] = (seed >> 4) % 3;
		}
		subs_set(subs, in, qos, n);
		nout = n;
		assert_int_equal(topic_subs_reduce(subs, &nout), 0);
		assert_true(nout >= 1 && nout <= n);
		check_reduced(in, qos, n, subs, nout, u.topics, u.ntopics);
		subs_free(subs, nout);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_match_long),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_generalize),
		cmocka_unit_test(test_reduce_exact),
		cmocka_unit_test(test_reduce_cascade),
		cmocka_unit_test(test_reduce_many),
		cmocka_unit_test(test_overlap_exhaustive),
		cmocka_unit_test(test_reduce_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
