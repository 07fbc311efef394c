/* One-line log records on stderr, as text or JSON. */
#ifndef MQTTRULES_LOG_H
#define MQTTRULES_LOG_H

#include <stdio.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR
};

/* Where a record comes from; either field may be NULL. An HTTP
 * outcome also gives its status (0: no response) and duration, which
 * JSON records carry as fields of their own. */
struct log_origin {
	const char	*rule;
	const char	*topic;
	int		 http;		/* status and ms below are set */
	long		 status;
	double		 ms;
};

void	log_setup(enum log_level min, int json);
int	log_level_parse(const char *name, enum log_level *out);
int	log_enabled(enum log_level);

void	log_at(enum log_level, const struct log_origin *, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#define log_debug(...)	log_at(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)	log_at(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)	log_at(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...)	log_at(LOG_ERROR, NULL, __VA_ARGS__)

/* Writes s as the body of a JSON string (no quotes): escaped so that a
 * record stays one line and valid JSON whatever a rule logs. */
void	log_json_string(FILE *, const char *s);

/* Copies url into buf without its query string and fragment, which may
 * hold tokens, and without user:password@. */
const char	*log_safe_url(const char *url, char *buf, size_t size);

#endif
