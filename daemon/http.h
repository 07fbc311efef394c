/* HTTP requests on one libcurl multi handle, with retries. Main thread
 * only. */
#ifndef MQTTRULES_HTTP_H
#define MQTTRULES_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "log.h"

struct config;

struct http_spec {
	const char		*method;
	const char		*url;
	struct curl_slist	*headers;	/* taken over by http_start */
	const char		*body;		/* NULL for none; copied */
	size_t			 body_len;
	long			 timeout;	/* seconds per attempt */
	long			 retries;
	struct log_origin	 origin;	/* for log records; copied */
};

struct http_result {
	long		 status;	/* 0 when no response came */
	const char	*body;		/* valid during the callback */
	size_t		 body_len;
	const char	*error;		/* NULL on a response */
};

typedef void	http_done_fn(void *ctx, const struct http_result *);

int	http_init(const struct config *);
void	http_shutdown(void);
CURLM	*http_multi(void);

/* Starts a request; done(ctx, result) runs from http_process once the
 * last attempt ended. Returns 0, or -1 with err set when the request is
 * refused (bad URL, host not allowed); done is then never called. */
int	http_start(const struct http_spec *, http_done_fn *done, void *ctx,
	    char *err, size_t size);

/* Advances transfers and calls done for those that finished. */
void	http_process(void);

/* Requests started and not yet done, retry waits included. */
int	http_pending(void);

/* Frees the easy handles kept for reuse (when the daemon is at rest);
 * open connections stay in the multi handle's cache. */
void	http_rest(void);

/* Answers one attempt in place of the network (mqttrules test): sets
 * *status and a malloc'd *body. */
typedef void	http_answer_fn(const struct log_origin *,
		    const char *method, const char *url,
		    const struct curl_slist *headers, const char *body,
		    size_t body_len, long *status, char **answer,
		    size_t *answer_len);

/* With an answerer set, no request leaves the process: each attempt is
 * answered on the timer queue at the current clock time. */
void	http_set_answerer(http_answer_fn *);

/* The delay before retry number attempt (1 for the first retry):
 * 1, 5, 25, 125, then 300 s, less up to a quarter of jitter (jitter01
 * in [0, 1]); a server's Retry-After (seconds, 0 for none) wins when
 * longer, up to 600 s. */
double	http_backoff(int attempt, long retry_after, double jitter01);

#endif
