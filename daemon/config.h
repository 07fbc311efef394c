/* The daemon's configuration: INI file, then environment overrides. */
#ifndef MQTTRULES_CONFIG_H
#define MQTTRULES_CONFIG_H

#include <stddef.h>

struct config {
	char	*path;			/* file read, NULL for defaults */

	char	*mqtt_url;
	char	*mqtt_client_id;
	char	*mqtt_username;
	char	*mqtt_password;
	long	 mqtt_qos;
	char	*mqtt_session;		/* "persistent" or "clean" */
	long	 mqtt_keepalive;
	char	*mqtt_ca_file;
	char	*mqtt_share_group;
	char	*mqtt_status_topic;	/* "" for mqttrules/<id>/status */

	char	*rules_dir;
	long	 rules_max_memory;	/* bytes */
	long	 rules_max_instructions;

	long	 http_timeout;		/* seconds per attempt */
	long	 http_retries;
	long	 http_max_connections;
	char	*http_allow_hosts;	/* comma list, "" for any */

	char	*daemon_state_dir;
	long	 daemon_shutdown_timeout;
	char	*daemon_metrics;
	char	*daemon_journal;	/* on, off */
	char	*daemon_journal_sync;	/* always, periodic, never */
	long	 daemon_max_in_flight;

	char	*log_level;
	char	*log_format;
};

/*
 * Loads path, or when path is NULL the first of etc/mqttrules.ini and
 * /etc/mqttrules/mqttrules.ini that exists (built-in defaults when
 * neither does), then applies MQTTRULES_<SECTION>_<KEY> variables.
 * On error returns -1 with a message naming the file and line, or the
 * variable, in err.
 */
int	config_load(struct config *, const char *path, char *err, size_t size);
void	config_free(struct config *);

#endif
