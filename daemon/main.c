/* mqttrules: the command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lua.h>

#include "config.h"
#include "counter.h"
#include "deadletter.h"
#include "dispatch.h"
#include "http.h"
#include "journal.h"
#include "lapi.h"
#include "log.h"
#include "path.h"
#include "loop.h"
#include "metrics.h"
#include "mqtt.h"
#include "queue.h"
#include "replay.h"
#include "rule.h"
#include "topic.h"

#define EXIT_BAD_CONFIG	1
#define EXIT_USAGE	2
#define EXIT_RUNTIME	3

struct options {
	const char	*command;
	const char	*config_path;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mqttrules [run] [-c FILE]\n"
	    "       mqttrules check [-c FILE]\n"
	    "       mqttrules test [-c FILE] [--events FILE] [--responses FILE]\n"
	    "                      [--http-status CODE] [--start TIME]\n"
	    "                      [--drain SECONDS] RULE.lua...\n"
	    "       mqttrules version\n");
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	int i = 1;

	o->command = "run";
	o->config_path = NULL;
	if (i < argc && argv[i][0] != '-')
		o->command = argv[i++];
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			o->config_path = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			exit(0);
		} else
			return -1;
	}
	if (strcmp(o->command, "run") != 0 &&
	    strcmp(o->command, "check") != 0 &&
	    strcmp(o->command, "version") != 0)
		return -1;
	return 0;
}

static int
publish_to_broker(const char *rule, const char *topic, const char *payload,
    size_t len, int qos, int retain)
{
	(void)rule;
	return mqtt_publish(topic, payload, len, qos, retain != 0);
}

static void
print_rules(const struct rule_set *rs)
{
	struct topic_sub *subs;
	size_t n;

	for (const struct rule *r = rs->rules; r != NULL; r = r->next) {
		printf("rule %s (%s)\n", r->name, r->path);
		for (size_t i = 0; i < r->nhandlers; i++)
			printf("  on %s qos %d%s\n", r->handlers[i].filter,
			    r->handlers[i].qos,
			    r->handlers[i].retained ? " retained" : "");
		for (size_t i = 0; i < r->nenv; i++)
			printf("  env %s %s\n", r->env[i].name,
			    r->env[i].state == RULE_ENV_SET ? "set" :
			    "not set, default used");
	}
	subs = rule_set_subscriptions(rs, &n);
	printf("subscriptions:\n");
	for (size_t i = 0; i < n; i++)
		printf("  %s qos %d\n", subs[i].filter, subs[i].qos);
	rule_subs_free(subs, n);
}

/* Events the journal holds from before, to the rules that had not
 * finished them, ahead of anything new. */
static void
replay_journal(struct journal *j, struct rule_set *rs)
{
	struct journal_pending *p;
	size_t n;

	if (j == NULL)
		return;		/* [daemon] journal = off */
	p = journal_take_pending(j, &n);
	if (n > 0)
		log_info("journal: %zu unfinished events from before, "
		    "handling them first", n);
	for (size_t i = 0; i < n; i++) {
		dispatch_message(rs, p[i].m, p[i].done, p[i].ndone);
		p[i].m = NULL;
	}
	journal_pending_free(p, n);
}

/* Opens the journal (unless [daemon] journal = off: *out stays NULL)
 * and the dead-letter file. Returns -1 when the journal cannot open. */
static int
open_state(const struct config *c, struct journal **out)
{
	enum journal_sync sync = JOURNAL_SYNC_PERIODIC;
	struct journal *j = NULL;
	char err[512];

	journal_sync_parse(c->daemon_journal_sync, &sync);
	if (strcmp(c->daemon_journal, "on") == 0 &&
	    (j = journal_open(c->daemon_state_dir, sync, err,
	    sizeof(err))) == NULL) {
		log_error("journal: %s", err);
		return -1;
	}
	if (j == NULL)
		log_warn("[daemon] journal = off: events taken from the "
		    "broker and not yet handled are lost if the daemon dies");
	if (deadletter_open(c->daemon_state_dir) == -1)
		log_error("%s/dead-letters.jsonl: cannot open",
		    c->daemon_state_dir);
	dispatch_setup(j);
	*out = j;
	return 0;
}

/* Counters from the last run, so that a restart does not reset the
 * counts rules act on. */
static char *
restore_counters(const struct config *c, struct counter_store *counters)
{
	char *path = path_join(c->daemon_state_dir, "counters");

	if (path == NULL)
		return NULL;
	if (counter_load(counters, path) == -1)
		log_error("%s: not a saved counter state; starting with "
		    "what could be read", path);
	else if (counter_live_keys(counters) > 0)
		log_info("counters: %zu keys restored from %s",
		    counter_live_keys(counters), path);
	return path;
}

/* A clean session drops what the broker held while the daemon was
 * away, which QoS 1 subscriptions exist to prevent. */
static void
warn_clean_session(const struct config *c, const struct topic_sub *subs,
    size_t n)
{
	if (strcmp(c->mqtt_session, "clean") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (subs[i].qos > 0) {
			log_warn("[mqtt] session = clean with QoS %d "
			    "subscriptions: messages published while the "
			    "daemon is away are lost; use persistent",
			    subs[i].qos);
			return;
		}
	}
}

static int
run_daemon(const struct config *c, struct rule_set *rs,
    struct counter_store *counters)
{
	struct queue *q = NULL;
	struct journal *j = NULL;
	struct topic_sub *subs = NULL;
	size_t n = 0;
	char err[512], *counters_path = NULL, *timers_path = NULL;
	int rc = EXIT_RUNTIME;

	/* As many messages wait as may be in flight: enough to keep the
	 * rules busy while paho is held up (see regulate_intake). */
	if ((q = queue_new((size_t)c->daemon_max_in_flight)) == NULL ||
	    http_init(c) == -1) {
		log_error("cannot set up the queue or libcurl");
		goto out;
	}
	if (metrics_start(c->daemon_metrics, err, sizeof(err)) == -1) {
		log_error("%s", err);
		goto out;
	}
	if (open_state(c, &j) == -1)
		goto out;
	counters_path = restore_counters(c, counters);
	if ((timers_path = path_join(c->daemon_state_dir, "timers")) != NULL)
		lapi_timer_restore(rs, timers_path);
	loop_save_state_to(counters_path, timers_path);
	lapi_set_publisher(publish_to_broker);
	subs = rule_set_subscriptions(rs, &n);
	metrics_set(M_MQTT_SUBSCRIPTIONS, (double)n);
	warn_clean_session(c, subs, n);
	if (mqtt_start(c, subs, n, q, j, loop_wake) == -1)
		goto out;
	replay_journal(j, rs);
	if (loop_run(c, rs, q, counters, j) == 0)
		rc = 0;
out:
	mqtt_stop(1000);
	rule_subs_free(subs, n);
	http_shutdown();
	dispatch_forget();
	rule_set_free(rs);
	journal_close(j);
	deadletter_close();
	metrics_stop();
	queue_free(q);
	free(counters_path);
	free(timers_path);
	return rc;
}

/* At start, at info: each rule and the filters it listens on. */
static void
log_rules(const struct rule_set *rs)
{
	char filters[1024];
	size_t used;

	for (const struct rule *r = rs->rules; r != NULL; r = r->next) {
		filters[0] = '\0';
		used = 0;
		for (size_t i = 0; i < r->nhandlers && used < sizeof(filters);
		    i++)
			used += (size_t)snprintf(filters + used,
			    sizeof(filters) - used, "%s%s (qos %d)",
			    i > 0 ? ", " : "", r->handlers[i].filter,
			    r->handlers[i].qos);
		log_info("rule %s loaded: %s", r->name, r->nhandlers > 0 ?
		    filters : "no handlers");
	}
}

static int
load_and_go(const struct options *o, struct config *c)
{
	struct counter_store *counters;
	struct rule_set rs;
	enum log_level level = LOG_INFO;
	int failed, rc;

	log_level_parse(c->log_level, &level);
	log_setup(level, strcmp(c->log_format, "json") == 0);
	if ((counters = counter_store_new()) == NULL)
		return EXIT_RUNTIME;
	if (strcmp(o->command, "run") == 0)
		log_info("mqttrules %s starting, config %s, rules in %s",
		    MQTTRULES_VERSION, c->path != NULL ? c->path :
		    "(built-in defaults)", c->rules_dir);
	failed = rule_set_load(&rs, c, counters);
	if (failed != 0) {
		rule_set_free(&rs);
		counter_store_free(counters);
		return EXIT_BAD_CONFIG;
	}
	if (strcmp(o->command, "run") == 0)
		log_rules(&rs);
	if (strcmp(o->command, "check") == 0) {
		print_rules(&rs);
		rule_set_free(&rs);
		rc = 0;
	} else
		rc = run_daemon(c, &rs, counters);
	counter_store_free(counters);
	return rc;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config c;
	char err[512];
	int rc;

	if (argc > 1 && strcmp(argv[1], "test") == 0) {
		signal(SIGPIPE, SIG_IGN);
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = replay_main(argc - 2, argv + 2);
		curl_global_cleanup();
		return rc;
	}
	if (parse_args(argc, argv, &o) == -1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(o.command, "version") == 0) {
		printf("mqttrules %s (%s, %s)\n", MQTTRULES_VERSION,
		    LUA_RELEASE, curl_version());
		return 0;
	}
	if (config_load(&c, o.config_path, err, sizeof(err)) == -1) {
		fprintf(stderr, "mqttrules: %s\n", err);
		config_free(&c);
		return EXIT_BAD_CONFIG;
	}
	/* Before paho starts threads; curl is then used from one thread. */
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = load_and_go(&o, &c);
	curl_global_cleanup();
	config_free(&c);
	return rc;
}
