/* The main loop: broker messages, timers and HTTP transfers on one
 * thread. It sleeps in curl_multi_poll until a socket, the next timer,
 * a wakeup from the MQTT thread or a signal needs it. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "counter.h"
#include "dispatch.h"
#include "http.h"
#include "journal.h"
#include "lapi.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mqtt.h"
#include "queue.h"
#include "rule.h"
#include "timer.h"

/* The longest sleep with nothing due: the heartbeat behind /healthz,
 * and how stale a clock jump can leave a timer. */
#define MAX_SLEEP_MS	5000

static int		 signal_pipe[2] = { -1, -1 };
static struct journal	*journal;
static bool		 paused;
static const char	*counters_path, *timers_path;
static bool		 intake_full;	/* max_in_flight reached */

void
loop_wake(void)
{
	CURLM *m = http_multi();

	if (m != NULL)
		curl_multi_wakeup(m);
}

static void
on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	if (write(signal_pipe[1], &b, 1) == -1) {
		/* The pipe is full: a signal is already pending. */
	}
	errno = saved;
}

static int
setup_signals(void)
{
	struct sigaction sa;

	if (pipe(signal_pipe) == -1)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(signal_pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

static void
reload(const struct config *c, struct rule_set *rs,
    struct counter_store *counters)
{
	struct topic_sub *subs;
	size_t n;
	int failed;

	log_info("loop: SIGHUP received, reloading rules from %s",
	    c->rules_dir);
	failed = rule_set_reload(rs, c, counters);
	subs = rule_set_subscriptions(rs, &n);
	if (subs == NULL && n == 0 && rs->count > 0)
		log_error("loop: out of memory computing subscriptions");
	else if (mqtt_set_subscriptions(subs, n) == -1)
		log_error("loop: could not update subscriptions");
	else
		metrics_set(M_MQTT_SUBSCRIPTIONS, (double)n);
	rule_subs_free(subs, n);
	log_info("loop: reload done, %zu rules, %d failed to load",
	    rs->count, failed);
}

/* Returns the first stop signal read, 0 when none; reloads on SIGHUP. */
static int
read_signals(const struct config *c, struct rule_set *rs,
    struct counter_store *counters)
{
	unsigned char b;
	int stop = 0;
	bool hup = false;

	while (read(signal_pipe[0], &b, 1) == 1) {
		if (b == SIGHUP)
			hup = true;
		else if (stop == 0)
			stop = b;
	}
	if (hup && stop == 0)
		reload(c, rs, counters);
	return stop;
}

/* How long to sleep: until the next timer, at most until until (a
 * clock_now() time, 0 for none). */
static int
sleep_ms(struct queue *q, double until)
{
	double next = timer_next(), now = clock_now();
	double limit = MAX_SLEEP_MS;

	if (queue_depth(q) > 0 && !intake_full)
		return 0;
	if (until > 0)
		limit = fmax(0, ceil((until - now) * 1000));
	if (next >= 0)
		limit = fmin(limit, fmax(0, ceil((next - now) * 1000)));
	return (int)fmin(limit, MAX_SLEEP_MS);
}

/* At [daemon] max_in_flight events the loop stops taking messages; the
 * queue then fills and holds up paho, which slows the broker down
 * without leaving it. Only when that has lasted a whole queue wait (the
 * targets are down, say) does the daemon leave the broker, which keeps
 * what arrives for the persistent session; it comes back once half of
 * the events held are done. */
static void
regulate_intake(const struct config *c, struct queue *q)
{
	size_t held = dispatch_in_flight() + queue_depth(q);
	size_t max = (size_t)c->daemon_max_in_flight;

	intake_full = dispatch_in_flight() >= max;
	if (!paused && queue_overflowing(q)) {
		log_warn("loop: %zu events in flight, %zu waiting; pausing "
		    "intake", dispatch_in_flight(), queue_depth(q));
		mqtt_pause();
		paused = true;
	} else if (paused && held <= max / 2) {
		log_info("loop: %zu events in flight, resuming intake", held);
		mqtt_resume();
		paused = false;
	}
}

/* Once a burst is over (a second with nothing in flight or waiting),
 * every rule state is collected in full, idle curl handles and the
 * journal's buffers are freed (connections stay) and malloc hands its
 * free pages back, so that the daemon at rest does not keep the
 * burst's peak. Returns whether a rest is still to come. */
static bool
rest_after_burst(struct rule_set *rs, struct queue *q, double now)
{
	static double busy_at;	/* the last turn with work; 0 once rested */

	if (dispatch_in_flight() > 0 || queue_depth(q) > 0) {
		busy_at = now;
		return true;
	}
	if (busy_at == 0)
		return false;
	if (now - busy_at < 1)
		return true;
	rule_set_collect(rs);
	http_rest();
	if (journal != NULL)
		journal_rest(journal);
	malloc_trim(0);
	busy_at = 0;
	return false;
}

/* Counters and keyed timers are saved at most once a second while they
 * change, and at exit: a crash loses at most the last second. */
static void
save_counters(struct counter_store *counters, double now, bool at_exit)
{
	static double last;

	if (at_exit || now - last >= 1) {
		if (counters_path != NULL && counter_dirty(counters) &&
		    counter_save(counters, counters_path) == -1)
			log_error("counters: cannot save to %s: %s",
			    counters_path, strerror(errno));
		if (timers_path != NULL && lapi_timer_dirty() &&
		    lapi_timer_save(timers_path) == -1)
			log_error("timers: cannot save to %s: %s",
			    timers_path, strerror(errno));
		last = now;
	}
}

static void
housekeeping(struct queue *q, struct counter_store *counters)
{
	double now = clock_now(), oldest;

	metrics_heartbeat(now);
	metrics_set(M_QUEUE_DEPTH, (double)queue_depth(q));
	metrics_set(M_EVENTS_IN_FLIGHT, (double)dispatch_in_flight());
	metrics_set(M_COUNTER_KEYS, (double)counter_live_keys(counters));
	save_counters(counters, now, false);
	if (journal == NULL)
		return;
	journal_tick(journal, now);
	oldest = journal_oldest(journal);
	metrics_set(M_JOURNAL_BYTES, (double)journal_bytes(journal));
	metrics_set(M_JOURNAL_OLDEST_SECONDS, oldest > 0 ? now - oldest : 0);
}

/* One turn: messages, due timers, finished transfers, then sleep (up
 * to until, when not 0). Returns the stop signal seen, 0 for none. */
static int
turn(const struct config *c, struct rule_set *rs, struct queue *q,
    struct counter_store *counters, double until)
{
	struct curl_waitfd wfd = { .fd = signal_pipe[0],
	    .events = CURL_WAIT_POLLIN };
	struct message *m;
	bool resting;
	int ms;

	mqtt_tick();
	/* Past the limit, messages wait in the queue (and then in the
	 * broker) rather than in rule states. */
	while (dispatch_in_flight() < (size_t)c->daemon_max_in_flight &&
	    (m = queue_pop(q)) != NULL)
		dispatch_message(rs, m, NULL, 0);
	timer_run_due(clock_now());
	http_process();
	counter_expire(counters, clock_now());
	rule_set_reap(rs);
	if (until == 0)
		regulate_intake(c, q);
	housekeeping(q, counters);
	resting = rest_after_burst(rs, q, clock_now());
	if (until > 0 && rule_set_running(rs) == 0 && queue_depth(q) == 0 &&
	    dispatch_in_flight() == 0)
		return 0;	/* drained: nothing left to wait for */
	ms = sleep_ms(q, until);
	if ((counter_dirty(counters) || lapi_timer_dirty() || resting) &&
	    ms > 1000)
		ms = 1000;	/* wake for the save or the rest */
	curl_multi_poll(http_multi(), &wfd, 1, ms, NULL);
	http_process();
	return read_signals(c, rs, counters);
}

static void
drain(const struct config *c, struct rule_set *rs, struct queue *q,
    struct counter_store *counters, double deadline)
{
	size_t left;

	/* Messages already taken from the broker are handled too. A turn
	 * wakes when a transfer ends, since its socket is polled. */
	while (((left = rule_set_running(rs)) > 0 || queue_depth(q) > 0 ||
	    dispatch_in_flight() > 0) && clock_now() < deadline)
		turn(c, rs, q, counters, deadline);
	if (left > 0)
		log_warn("loop: %zu handlers still running after %ld s, "
		    "stopping them", left, c->daemon_shutdown_timeout);
}

void
loop_save_state_to(const char *counters, const char *timers)
{
	counters_path = counters;
	timers_path = timers;
}

int
loop_run(const struct config *c, struct rule_set *rs, struct queue *q,
    struct counter_store *counters, struct journal *j)
{
	double deadline;
	int sig = 0;

	journal = j;
	if (setup_signals() == -1)
		return -1;
	while (sig == 0)
		sig = turn(c, rs, q, counters, 0);
	log_info("loop: %s received, stopping", strsignal(sig));
	/* Leaving the broker first stops intake; with a persistent session
	 * the broker keeps what arrives meanwhile. Both steps share
	 * shutdown_timeout. */
	deadline = clock_now() + (double)c->daemon_shutdown_timeout;
	mqtt_stop((int)fmin(1000, c->daemon_shutdown_timeout * 500.0));
	drain(c, rs, q, counters, deadline);
	save_counters(counters, clock_now(), true);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	return 0;
}
