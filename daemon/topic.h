/* MQTT topic filters: matching, validation and subscription reduction. */
#ifndef MQTTRULES_TOPIC_H
#define MQTTRULES_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* A filter the daemon subscribes to, with the QoS it asks for. */
struct topic_sub {
	char	*filter;	/* malloc'd */
	int	 qos;
};

/* True when filter is a valid MQTT topic filter: not empty, '+' and '#'
 * alone in their level, '#' only as the last level. */
bool	topic_filter_valid(const char *filter);

/* True when topic matches filter per MQTT 3.1.1 section 4.7, including
 * "a/#" matching "a" and wildcards at the first level not matching
 * topics that start with '$'. */
bool	topic_matches(const char *filter, const char *topic);

/* True when some topic could match both filters. */
bool	topic_filters_overlap(const char *a, const char *b);

/* The narrowest filter that matches every topic either filter matches;
 * malloc'd, NULL on allocation failure. */
char	*topic_filter_generalize(const char *a, const char *b);

/*
 * Rewrites subs[0..*n) in place so that no two filters overlap: equal
 * filters are merged, overlapping ones replaced by their
 * generalization, each keeping the highest QoS of what it replaced.
 * A broker then delivers each message at most once, and the daemon
 * dispatches on its own matching. Frees the filters it drops.
 * Returns 0, or -1 on allocation failure.
 */
int	topic_subs_reduce(struct topic_sub *subs, size_t *n);

#endif
