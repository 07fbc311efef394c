/* Hands each message to the handlers that match it, and keeps track of
 * it until every matching rule has finished: then it is done in the
 * journal, or a dead letter for each rule that failed. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "deadletter.h"
#include "dispatch.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "rule.h"
#include "topic.h"

struct event {
	struct message	*m;
	int		 rules_left;
	struct share	*shares;	/* unfinished, for dispatch_forget */
	struct event	*prev, *next;
};

/* One rule's share of an event: ends when its last handler run does. */
struct share {
	struct delivery	 delivery;	/* first: the core hands it back */
	struct event	*ev;
	char		*rule;
	int		 runs_left;
	char		*failure;
	double		 started;
	struct share	*next;		/* in its event */
};

static struct journal	*journal;
static struct event	*events;
static size_t		 in_flight;

void
dispatch_setup(struct journal *j)
{
	journal = j;
}

size_t
dispatch_in_flight(void)
{
	return in_flight;
}

static void
event_finished(struct event *ev)
{
	if (journal != NULL && ev->m->id != 0)
		journal_done(journal, ev->m->id, NULL);
	if (ev->prev != NULL)
		ev->prev->next = ev->next;
	else
		events = ev->next;
	if (ev->next != NULL)
		ev->next->prev = ev->prev;
	message_free(ev->m);
	free(ev);
	in_flight--;
}

static void
share_free(struct share *s)
{
	struct share **p = &s->ev->shares;

	while (*p != s)
		p = &(*p)->next;
	*p = s->next;
	free(s->failure);
	free(s->rule);
	free(s);
}

static void
share_finished(struct share *s)
{
	struct event *ev = s->ev;
	struct log_origin o = { .rule = s->rule,
	    .topic = ev->m->topic };

	metrics_observe(M_HANDLER_SECONDS, s->rule, clock_now() - s->started);
	if (s->failure != NULL) {
		metrics_add(M_EVENTS_FAILED, s->rule, 1);
		if (deadletter_write(s->rule, ev->m, s->failure)) {
			metrics_add(M_EVENTS_DEAD_LETTERED, s->rule, 1);
			log_at(LOG_INFO, &o, "event failed, kept as a dead "
			    "letter");
		}
	} else
		metrics_add(M_EVENTS_HANDLED, s->rule, 1);
	/* The last rule's mark is the event's own (event_finished). */
	if (journal != NULL && ev->m->id != 0 && ev->rules_left > 1)
		journal_done(journal, ev->m->id, s->rule);
	share_free(s);
	if (--ev->rules_left == 0)
		event_finished(ev);
}

static void
on_run_ended(struct delivery *d, struct rule *r, const char *failure)
{
	struct share *s = (struct share *)d;

	(void)r;
	if (failure != NULL && s->failure == NULL)
		s->failure = strdup(failure);
	if (--s->runs_left == 0)
		share_finished(s);
}

static bool
skipped(const char *rule, char *const *skip, size_t nskip)
{
	for (size_t i = 0; i < nskip; i++)
		if (strcmp(skip[i], rule) == 0)
			return true;
	return false;
}

static bool
wants(const struct handler *h, const struct message *m)
{
	return (!m->retained || h->retained) &&
	    topic_matches(h->filter, m->topic);
}

/* Starts rule r's matching handlers for ev; counts them first, since a
 * run may end before the next starts. */
static void
run_rule(struct rule *r, struct event *ev)
{
	struct share *s;
	int runs = 0;

	for (size_t i = 0; i < r->nhandlers; i++)
		runs += wants(&r->handlers[i], ev->m);
	if (runs == 0)
		return;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->rule = strdup(r->name)) == NULL) {
		free(s);
		log_error("dispatch: out of memory for %s", r->name);
		return;
	}
	s->delivery.ended = on_run_ended;
	s->ev = ev;
	s->runs_left = runs;
	s->started = clock_now();
	s->next = ev->shares;
	ev->shares = s;
	ev->rules_left++;
	for (size_t i = 0; i < r->nhandlers; i++)
		if (wants(&r->handlers[i], ev->m))
			rule_start(r, r->handlers[i].fn_ref, ev->m->topic,
			    rule_push_message, ev->m, &s->delivery);
}

/* Counts m once for each distinct handler filter it matches, however
 * many rules listen on that filter. */
static void
count_received(const struct rule_set *rs, const struct message *m)
{
	const char *seen[64];
	size_t nseen = 0, k;

	for (const struct rule *r = rs->rules; r != NULL; r = r->next) {
		for (size_t i = 0; i < r->nhandlers; i++) {
			const char *f = r->handlers[i].filter;

			if (!wants(&r->handlers[i], m))
				continue;
			for (k = 0; k < nseen && strcmp(seen[k], f) != 0; k++)
				continue;
			if (k < nseen)
				continue;
			if (nseen < sizeof(seen) / sizeof(*seen))
				seen[nseen++] = f;
			metrics_add(M_MESSAGES_RECEIVED, f, 1);
		}
	}
}

void
dispatch_message(struct rule_set *rs, struct message *m, char *const *skip,
    size_t nskip)
{
	struct event *ev;

	if ((ev = calloc(1, sizeof(*ev))) == NULL) {
		log_error("dispatch: out of memory, %s left in the journal",
		    m->topic);
		message_free(m);
		return;
	}
	ev->m = m;
	ev->next = events;
	if (events != NULL)
		events->prev = ev;
	events = ev;
	in_flight++;
	count_received(rs, m);
	/* Held at one while starting, so that no run ending early can
	 * finish the event before every rule has had it. */
	ev->rules_left = 1;
	for (struct rule *r = rs->rules; r != NULL; r = r->next)
		if (!skipped(r->name, skip, nskip))
			run_rule(r, ev);
	if (--ev->rules_left == 0)
		event_finished(ev);
}

void
dispatch_forget(void)
{
	struct event *ev;

	while ((ev = events) != NULL) {
		events = ev->next;
		while (ev->shares != NULL)
			share_free(ev->shares);
		message_free(ev->m);
		free(ev);
	}
	in_flight = 0;
}
