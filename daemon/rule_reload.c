/* Reloading the rules directory on SIGHUP, and freeing the rule
 * versions it replaced once they have finished their work. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lapi.h"
#include "log.h"
#include "rule.h"
#include "timer.h"

static bool
unchanged(const struct rule *r)
{
	struct stat st;

	return stat(r->path, &st) == 0 && st.st_ino == r->stamp.st_ino &&
	    st.st_size == r->stamp.st_size &&
	    st.st_mtim.tv_sec == r->stamp.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == r->stamp.st_mtim.tv_nsec;
}

/* Takes the rule loaded from path out of *list, NULL when none was. */
static struct rule *
take_by_path(struct rule **list, const char *path)
{
	struct rule *r;

	for (; (r = *list) != NULL; list = &r->next) {
		if (strcmp(r->path, path) == 0) {
			*list = r->next;
			r->next = NULL;
			return r;
		}
	}
	return NULL;
}

/* A retired rule gets no more events or timers; what it is running
 * goes on, and rule_set_reap frees it once that has ended. */
static void
retire(struct rule_set *rs, struct rule *r)
{
	r->retired = true;
	timer_cancel_owner(r);
	r->next = rs->retired;
	rs->retired = r;
}

static void
push_back(struct rule **tail_of_list, struct rule *r)
{
	while (*tail_of_list != NULL)
		tail_of_list = &(*tail_of_list)->next;
	r->next = NULL;
	*tail_of_list = r;
}

/* The rule for path after a reload: the old one when unchanged or when
 * the new version fails to load, else the new one. */
static struct rule *
refresh(struct rule_set *rs, struct rule *old, const char *path,
    const struct config *c, struct counter_store *counters, int *failed)
{
	struct rule *fresh;
	char err[1024];

	if (old != NULL && unchanged(old))
		return old;
	if ((fresh = rule_load_file(path, c, counters, err, sizeof(err))) ==
	    NULL) {
		log_error("%s%s", err, old != NULL ?
		    " (the previous version keeps running)" : "");
		(*failed)++;
		return old;
	}
	log_info("rule %s %s with %zu handlers", fresh->name,
	    old != NULL ? "reloaded" : "loaded", fresh->nhandlers);
	if (old != NULL) {
		lapi_timer_forget(old, fresh);
		retire(rs, old);
	}
	return fresh;
}

int
rule_set_reload(struct rule_set *rs, const struct config *c,
    struct counter_store *counters)
{
	struct rule *kept = NULL, *r;
	char **paths;
	size_t n;
	int failed = 0;

	if ((paths = rule_list_files(c->rules_dir, &n)) == NULL &&
	    errno != 0) {
		log_error("%s: cannot read rules directory: %s; rules left "
		    "as they were", c->rules_dir, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		r = refresh(rs, take_by_path(&rs->rules, paths[i]), paths[i],
		    c, counters, &failed);
		if (r != NULL)
			push_back(&kept, r);
	}
	while ((r = rs->rules) != NULL) {
		rs->rules = r->next;
		log_info("rule %s removed", r->name);
		lapi_timer_forget(r, NULL);
		retire(rs, r);
	}
	rs->rules = kept;
	rs->count = 0;
	for (r = kept; r != NULL; r = r->next)
		rs->count++;
	rule_files_free(paths, n);
	rule_set_reap(rs);
	return failed;
}

void
rule_set_reap(struct rule_set *rs)
{
	struct rule **p = &rs->retired, *r;

	while ((r = *p) != NULL) {
		if (r->running != NULL) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		rule_free(r);
	}
}
