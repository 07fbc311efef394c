/* HTTP requests on one libcurl multi handle, with retries. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "timer.h"

#define RESPONSE_MAX	(4 << 20)

/* Retry n waits RETRY_FACTOR^(n-1) s, capped, less up to a quarter of
 * jitter: 1, 5, 25, 125, 300 s. The five default retries thus span at
 * least 342 s, riding out a five-minute outage of the target. */
#define RETRY_FACTOR	5
#define RETRY_CAP	300
#define RETRY_AFTER_MAX	600	/* a server's Retry-After, honoured up to */

struct transfer {
	CURL		*easy;		/* only while in libcurl */
	long		 timeout;
	char		*method, *url, *body, *rule, *topic;
	size_t		 body_len;
	struct curl_slist *headers;
	long		 retries;
	int		 attempt;
	char		*response;
	size_t		 response_len;
	char		 error[CURL_ERROR_SIZE];
	double		 started;
	http_done_fn	*done;
	void		*ctx;
	uint64_t	 retry_timer;	/* 0 unless waiting to retry */
	uint64_t	 attempt_timer;	/* 0 unless an answer is due */
	struct transfer	*next_waiting;	/* for a connection slot */
	struct transfer	*prev, *next;	/* every live transfer */
};

static CURLM	*multi;
static char	*allow_hosts;
static int	 pending;
static struct transfer *transfers;
static http_answer_fn	*answerer;

/* At most max_active transfers are in libcurl at once; the rest wait
 * here in order. libcurl 7.88's own queue behind
 * CURLMOPT_MAX_TOTAL_CONNECTIONS was seen to leave transfers stalled. */
static int		 active, max_active;
static struct transfer	*waiting_head, **waiting_tail = &waiting_head;

/* Easy handles of finished attempts, kept for the next ones: a handle
 * is a few kB, made once per connection slot rather than once per
 * request, and its buffers are not churned through the heap. */
static CURL		**idle_handles;
static int		  nidle;

int
http_init(const struct config *c)
{
	if ((multi = curl_multi_init()) == NULL)
		return -1;
	max_active = (int)c->http_max_connections;
	if ((idle_handles = calloc((size_t)max_active,
	    sizeof(*idle_handles))) == NULL)
		return -1;
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
	    c->http_max_connections);
	if (c->http_allow_hosts[0] != '\0' &&
	    (allow_hosts = strdup(c->http_allow_hosts)) == NULL)
		return -1;
	return 0;
}

CURLM *
http_multi(void)
{
	return multi;
}

static void
transfer_link(struct transfer *t)
{
	t->next = transfers;
	if (transfers != NULL)
		transfers->prev = t;
	transfers = t;
}

static void
transfer_free(struct transfer *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else if (transfers == t)
		transfers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	free(t->method);
	free(t->url);
	free(t->body);
	free(t->rule);
	free(t->topic);
	free(t->response);
	free(t);
}

static size_t
on_response_data(char *data, size_t size, size_t n, void *user)
{
	struct transfer *t = user;
	size_t len = size * n;
	char *grown;

	if (t->response_len + len > RESPONSE_MAX)
		return 0;	/* aborts with CURLE_WRITE_ERROR */
	if ((grown = realloc(t->response, t->response_len + len + 1)) == NULL)
		return 0;
	memcpy(grown + t->response_len, data, len);
	t->response = grown;
	t->response_len += len;
	t->response[t->response_len] = '\0';
	return len;
}

static int
host_allowed(const char *url, char *err, size_t size)
{
	CURLU *u;
	char *host = NULL, *list, *tok, *save;
	int ok = 0;

	if ((u = curl_url()) == NULL)
		return 0;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, size, "not a valid URL");
		goto done;
	}
	/* Checked here, not only by libcurl, so that mqttrules test
	 * refuses what run would. */
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, size, "only http:// and https:// URLs");
		goto done;
	}
	if (allow_hosts == NULL) {
		ok = 1;
		goto done;
	}
	if ((list = strdup(allow_hosts)) == NULL)
		goto done;
	for (tok = strtok_r(list, ", ", &save); tok != NULL && !ok;
	    tok = strtok_r(NULL, ", ", &save))
		ok = strcasecmp(tok, host) == 0;
	free(list);
	if (!ok)
		snprintf(err, size, "host %s is not in [http] allow_hosts",
		    host);
done:
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static void
set_method(struct transfer *t)
{
	CURL *e = t->easy;

	if (strcmp(t->method, "GET") == 0 && t->body == NULL) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (strcmp(t->method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		return;
	}
	if (t->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)t->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
	}
	if (strcmp(t->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
}

static CURL *
take_handle(void)
{
	if (nidle == 0)
		return curl_easy_init();
	curl_easy_reset(idle_handles[--nidle]);
	return idle_handles[nidle];
}

static void
give_back_handle(CURL *e)
{
	if (nidle < max_active)
		idle_handles[nidle++] = e;
	else
		curl_easy_cleanup(e);
}

/* Gives t an easy handle set up for its next attempt. */
static int
setup_easy(struct transfer *t)
{
	CURL *e;

	if ((e = t->easy = take_handle()) == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, t->timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, t->timeout);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mqttrules/" MQTTRULES_VERSION);
	set_method(t);
	return 0;
}

static int
copy_spec(struct transfer *t, const struct http_spec *s)
{
	t->method = strdup(s->method);
	t->url = strdup(s->url);
	t->rule = s->origin.rule != NULL ? strdup(s->origin.rule) : NULL;
	t->topic = s->origin.topic != NULL ? strdup(s->origin.topic) : NULL;
	if (s->body != NULL && (t->body = malloc(s->body_len + 1)) != NULL) {
		memcpy(t->body, s->body, s->body_len);
		t->body_len = s->body_len;
	}
	if (t->method == NULL || t->url == NULL ||
	    (s->body != NULL && t->body == NULL) ||
	    (s->origin.rule != NULL && t->rule == NULL) ||
	    (s->origin.topic != NULL && t->topic == NULL))
		return -1;
	return 0;
}

void
http_set_answerer(http_answer_fn *fn)
{
	answerer = fn;
}

static void on_attempt_done(struct transfer *, CURLcode, long, long);

/* Hands t to libcurl for an attempt. */
static int
enter_curl(struct transfer *t)
{
	if (setup_easy(t) == -1)
		return -1;
	if (curl_multi_add_handle(multi, t->easy) != CURLM_OK) {
		give_back_handle(t->easy);
		t->easy = NULL;
		return -1;
	}
	active++;
	return 0;
}

static void
on_answer_due(void *ctx)
{
	struct transfer *t = ctx;
	long status = 0;

	t->attempt_timer = 0;
	answerer(&(struct log_origin){ .rule = t->rule,
	    .topic = t->topic }, t->method, t->url,
	    t->headers, t->body, t->body_len, &status, &t->response,
	    &t->response_len);
	on_attempt_done(t, CURLE_OK, status, 0);
}

static int
launch(struct transfer *t)
{
	free(t->response);
	t->response = NULL;
	t->response_len = 0;
	t->error[0] = '\0';
	t->attempt++;
	t->started = clock_now();
	if (answerer != NULL)
		return (t->attempt_timer = timer_add(t->started, on_answer_due,
		    t, NULL)) != 0 ? 0 : -1;
	if (active >= max_active) {
		t->next_waiting = NULL;
		*waiting_tail = t;
		waiting_tail = &t->next_waiting;
		return 0;
	}
	return enter_curl(t);
}

/* Starts waiting transfers while there are free slots. */
static void
start_waiting(void)
{
	struct transfer *t;

	while (active < max_active && (t = waiting_head) != NULL) {
		waiting_head = t->next_waiting;
		if (waiting_head == NULL)
			waiting_tail = &waiting_head;
		t->started = clock_now();
		if (enter_curl(t) == -1)
			on_attempt_done(t, CURLE_FAILED_INIT, 0, 0);
	}
}

int
http_start(const struct http_spec *s, http_done_fn *done, void *ctx,
    char *err, size_t size)
{
	struct transfer *t;
	struct curl_slist *headers;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		curl_slist_free_all(s->headers);
		snprintf(err, size, "out of memory");
		return -1;
	}
	/* libcurl would add "Expect: 100-continue" to larger bodies and
	 * stall a second on servers that ignore it. */
	headers = curl_slist_append(s->headers, "Expect:");
	t->headers = headers != NULL ? headers : s->headers;
	t->retries = s->retries;
	t->timeout = s->timeout;
	t->done = done;
	t->ctx = ctx;
	if (!host_allowed(s->url, err, size))
		goto fail;
	if (headers == NULL || copy_spec(t, s) == -1 || launch(t) == -1) {
		snprintf(err, size, "could not start the request");
		goto fail;
	}
	pending++;
	transfer_link(t);
	return 0;
fail:
	transfer_free(t);
	return -1;
}

double
http_backoff(int attempt, long retry_after, double jitter01)
{
	double base = fmin(RETRY_CAP, pow(RETRY_FACTOR, attempt - 1));
	double delay = base * (0.75 + 0.25 * jitter01);

	if (retry_after > RETRY_AFTER_MAX)
		retry_after = RETRY_AFTER_MAX;
	return retry_after > delay ? (double)retry_after : delay;
}

static int
retryable(CURLcode rc, long status)
{
	if (rc == CURLE_WRITE_ERROR)
		return 0;	/* our own cap on the response size */
	if (rc != CURLE_OK)
		return 1;
	return status == 429 || status >= 500;
}

static void
on_retry_due(void *ctx)
{
	struct transfer *t = ctx;
	char where[512];

	t->retry_timer = 0;
	if (launch(t) == 0)
		return;
	log_at(LOG_ERROR, &(struct log_origin){ .rule = t->rule,
	    .topic = t->topic }, "http: could not restart %s %s", t->method,
	    log_safe_url(t->url, where, sizeof(where)));
}

static void
log_outcome(const struct transfer *t, CURLcode rc, long status, int retry)
{
	char where[512];
	struct log_origin o = { t->rule, t->topic, 1, rc == CURLE_OK ?
	    status : 0, (clock_now() - t->started) * 1000 };
	enum log_level level = LOG_DEBUG;

	log_safe_url(t->url, where, sizeof(where));
	if (retry || rc != CURLE_OK || status >= 400)
		level = LOG_WARN;
	if (rc != CURLE_OK)
		log_at(level, &o, "http: %s %s failed: %s (attempt %d)%s",
		    t->method, where, t->error[0] ? t->error :
		    curl_easy_strerror(rc), t->attempt,
		    retry ? ", will retry" : "");
	else
		log_at(level, &o, "http: %s %s -> %ld in %.0f ms (attempt %d)%s",
		    t->method, where, status, o.ms, t->attempt,
		    retry ? ", will retry" : "");
}

static void
finish(struct transfer *t, CURLcode rc, long status)
{
	struct http_result r = { .status = status };

	if (rc != CURLE_OK) {
		r.status = 0;
		r.error = t->error[0] ? t->error : curl_easy_strerror(rc);
	}
	r.body = t->response != NULL ? t->response : "";
	r.body_len = t->response_len;
	pending--;
	t->done(t->ctx, &r);
	transfer_free(t);
}

static void
on_attempt_done(struct transfer *t, CURLcode rc, long status,
    long retry_after)
{
	int retry = retryable(rc, status) && t->attempt <= t->retries;

	metrics_http_request(t->rule, rc == CURLE_OK ? status : 0);
	metrics_observe(M_HTTP_SECONDS, t->rule, clock_now() - t->started);
	if (retry)
		metrics_add(M_HTTP_RETRIES, t->rule, 1);
	log_outcome(t, rc, status, retry);
	if (retry && (t->retry_timer = timer_add(clock_now() +
	    http_backoff(t->attempt, retry_after, (double)rand() / RAND_MAX),
	    on_retry_due, t, NULL)) != 0)
		return;
	finish(t, rc, status);
}

static void
on_transfer_done(CURL *easy, CURLcode rc)
{
	struct transfer *t;
	long status = 0;
	curl_off_t retry_after = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
	curl_multi_remove_handle(multi, easy);
	give_back_handle(easy);
	t->easy = NULL;
	active--;
	on_attempt_done(t, rc, status, (long)retry_after);
	start_waiting();
}

void
http_process(void)
{
	CURLMsg *msg;
	int running, left;

	curl_multi_perform(multi, &running);
	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			on_transfer_done(msg->easy_handle, msg->data.result);
}

int
http_pending(void)
{
	return pending;
}

void
http_rest(void)
{
	while (nidle > 0)
		curl_easy_cleanup(idle_handles[--nidle]);
}

/* Drops what is still in flight without calling back: the callers are
 * gone by then. */
void
http_shutdown(void)
{
	while (transfers != NULL) {
		struct transfer *t = transfers;

		if (t->retry_timer != 0)
			timer_cancel(t->retry_timer);
		else if (t->attempt_timer != 0)
			timer_cancel(t->attempt_timer);
		else if (t->easy != NULL)
			curl_multi_remove_handle(multi, t->easy);
		transfer_free(t);
	}
	http_rest();
	free(idle_handles);
	idle_handles = NULL;
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	active = 0;
	waiting_head = NULL;
	waiting_tail = &waiting_head;
	free(allow_hosts);
	allow_hosts = NULL;
}
