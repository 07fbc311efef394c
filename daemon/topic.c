/* MQTT topic filters: matching, validation and subscription reduction. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

/* MQTT strings carry a 16-bit length, so no longer filter can be sent. */
#define FILTER_MAX	65535

static size_t
level_len(const char *s)
{
	return strcspn(s, "/");
}

static bool
level_is(const char *s, char c)
{
	return s[0] == c && (s[1] == '/' || s[1] == '\0');
}

/* A wildcard as the first level never matches a topic starting with '$'
 * (MQTT 3.1.1 section 4.7.2), so such topics only meet a literal level. */
static bool
first_level_wild(const char *filter)
{
	return level_is(filter, '+') || level_is(filter, '#');
}

bool
topic_filter_valid(const char *filter)
{
	const char	*p;
	size_t		 len;

	if (*filter == '\0' || strlen(filter) > FILTER_MAX)
		return false;
	for (p = filter;; p++) {
		len = level_len(p);
		if (strcspn(p, "+#") < len) {
			if (len != 1)
				return false;
			if (*p == '#' && p[1] != '\0')
				return false;
		}
		p += len;
		if (*p == '\0')
			return true;
	}
}

bool
topic_matches(const char *filter, const char *topic)
{
	const char	*f = filter, *t = topic;
	size_t		 fl, tl;

	if (*t == '\0' || (*t == '$' && first_level_wild(f)))
		return false;
	for (;;) {
		if (level_is(f, '#'))
			return true;
		fl = level_len(f);
		tl = level_len(t);
		if (!level_is(f, '+') && (fl != tl || memcmp(f, t, fl) != 0))
			return false;
		f += fl;
		t += tl;
		if (*f == '\0' || *t == '\0')
			break;
		f++;
		t++;
	}
	/* "a/#" also matches its parent "a". */
	return *f == *t || strcmp(f, "/#") == 0;
}

bool
topic_filters_overlap(const char *a, const char *b)
{
	size_t	al, bl;
	bool	first = true;

	if ((first_level_wild(a) && *b == '$') ||
	    (first_level_wild(b) && *a == '$'))
		return false;
	for (;;) {
		if (level_is(a, '#') || level_is(b, '#'))
			return true;
		al = level_len(a);
		bl = level_len(b);
		if (!level_is(a, '+') && !level_is(b, '+') &&
		    (al != bl || memcmp(a, b, al) != 0))
			return false;
		a += al;
		b += bl;
		if (*a == '\0' || *b == '\0')
			break;
		a++;
		b++;
		first = false;
	}
	if (*a == *b)
		return true;
	/* "x/#" matches "x" too, but no topic is empty: "+" and "/#" only
	 * share "". */
	if (first && (al == 0 || bl == 0))
		return false;
	return strcmp(a, "/#") == 0 || strcmp(b, "/#") == 0;
}

/*
 * Filters that overlap either start with the same literal level or both
 * with a wildcard, so their generalization covers both. Otherwise, when
 * only one of them starts with '$', no filter covers both and the result
 * misses that one's topics.
 */
char *
topic_filter_generalize(const char *a, const char *b)
{
	char	*out, *o;
	size_t	 al, bl;

	/* Each output level is no longer than the longer input level. */
	if ((out = malloc(strlen(a) + strlen(b) + 3)) == NULL)
		return NULL;
	o = out;
	for (;;) {
		if (level_is(a, '#') || level_is(b, '#')) {
			*o++ = '#';
			break;
		}
		al = level_len(a);
		bl = level_len(b);
		if (al == bl && memcmp(a, b, al) == 0) {
			memcpy(o, a, al);
			o += al;
		} else
			*o++ = '+';
		a += al;
		b += bl;
		if (*a == '\0' && *b == '\0')
			break;
		*o++ = '/';
		if (*a == '\0' || *b == '\0') {
			*o++ = '#';
			break;
		}
		a++;
		b++;
	}
	*o = '\0';
	return out;
}

/* Replaces subs[i] by its generalization with subs[j] and drops subs[j],
 * keeping the order of the others. */
static int
subs_merge(struct topic_sub *subs, size_t *n, size_t i, size_t j)
{
	char	*g;

	if ((g = topic_filter_generalize(subs[i].filter,
	    subs[j].filter)) == NULL)
		return -1;
	free(subs[i].filter);
	subs[i].filter = g;
	if (subs[j].qos > subs[i].qos)
		subs[i].qos = subs[j].qos;
	free(subs[j].filter);
	memmove(&subs[j], &subs[j + 1], (*n - j - 1) * sizeof(*subs));
	(*n)--;
	return 0;
}

/*
 * A merge widens subs[i], which may then overlap a filter already
 * compared with it, so passes repeat until one merges nothing. Each
 * merge drops a filter, so this ends. On failure subs still holds valid
 * filters covering every input topic, only not fully reduced.
 */
int
topic_subs_reduce(struct topic_sub *subs, size_t *n)
{
	size_t	i, j;
	bool	merged;

	do {
		merged = false;
		for (i = 0; i < *n; i++) {
			for (j = i + 1; j < *n; j++) {
				if (!topic_filters_overlap(subs[i].filter,
				    subs[j].filter))
					continue;
				if (subs_merge(subs, n, i, j) == -1)
					return -1;
				merged = true;
				j = i;	/* subs[i] widened: compare anew */
			}
		}
	} while (merged);
	return 0;
}
