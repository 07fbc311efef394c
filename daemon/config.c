/* The daemon's configuration: INI file, then environment overrides. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"

enum key_type { KEY_STRING, KEY_INT, KEY_SIZE, KEY_CHOICE };

struct key_def {
	const char	*section;
	const char	*name;
	enum key_type	 type;
	size_t		 offset;
	const char	*fallback;
	long		 min, max;	/* KEY_INT, KEY_SIZE */
	const char	*choices;	/* KEY_CHOICE: space separated */
};

#define STR(s, k, field, def) \
	{ s, k, KEY_STRING, offsetof(struct config, field), def, 0, 0, NULL }
#define INT(s, k, field, def, lo, hi) \
	{ s, k, KEY_INT, offsetof(struct config, field), def, lo, hi, NULL }
#define SIZE(s, k, field, def, lo, hi) \
	{ s, k, KEY_SIZE, offsetof(struct config, field), def, lo, hi, NULL }
#define CHOICE(s, k, field, def, list) \
	{ s, k, KEY_CHOICE, offsetof(struct config, field), def, 0, 0, list }

static const struct key_def keys[] = {
	STR("mqtt", "url", mqtt_url, "mqtt://127.0.0.1:1883"),
	STR("mqtt", "client_id", mqtt_client_id, "mqttrules"),
	STR("mqtt", "username", mqtt_username, ""),
	STR("mqtt", "password", mqtt_password, ""),
	INT("mqtt", "qos", mqtt_qos, "1", 0, 2),
	CHOICE("mqtt", "session", mqtt_session, "persistent",
	    "persistent clean"),
	INT("mqtt", "keepalive", mqtt_keepalive, "30", 5, 65535),
	STR("mqtt", "ca_file", mqtt_ca_file, ""),
	STR("mqtt", "share_group", mqtt_share_group, ""),
	STR("mqtt", "status_topic", mqtt_status_topic, ""),
	STR("rules", "dir", rules_dir, "rules"),
	SIZE("rules", "max_memory", rules_max_memory, "16M", 1L << 20,
	    1L << 40),
	INT("rules", "max_instructions", rules_max_instructions, "10000000",
	    1000, 1L << 40),
	INT("http", "timeout", http_timeout, "10", 1, 3600),
	INT("http", "retries", http_retries, "5", 0, 100),
	INT("http", "max_connections", http_max_connections, "64", 1, 10000),
	STR("http", "allow_hosts", http_allow_hosts, ""),
	STR("daemon", "state_dir", daemon_state_dir, "var"),
	INT("daemon", "shutdown_timeout", daemon_shutdown_timeout, "10", 0,
	    3600),
	STR("daemon", "metrics", daemon_metrics, "127.0.0.1:9883"),
	CHOICE("daemon", "journal_sync", daemon_journal_sync, "always",
	    "always periodic never"),
	INT("daemon", "max_in_flight", daemon_max_in_flight, "1000", 1,
	    1000000),
	CHOICE("log", "level", log_level, "info", "debug info warn error"),
	CHOICE("log", "format", log_format, "text", "text json"),
};
#define NKEYS (sizeof(keys) / sizeof(*keys))

/* inih gives no line to its handler, so the handler keeps the first
 * error and ini_parse returns that error's line. */
struct parse_state {
	struct config	*config;
	bool		 seen[NKEYS];
	char		 error[256];
};

static const struct key_def *
find_key(const char *section, const char *name, size_t *index)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0) {
			*index = i;
			return &keys[i];
		}
	}
	return NULL;
}

static bool
section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* Parses "16M", "512k", "1G" or a plain number of bytes. */
static int
parse_size(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': v <<= 10; end++; break;
	case 'M': v <<= 20; end++; break;
	case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static bool
choice_allowed(const char *choices, const char *value)
{
	size_t n = strlen(value);
	const char *p = choices;

	while (n > 0 && (p = strstr(p, value)) != NULL) {
		bool starts = p == choices || p[-1] == ' ';
		bool ends = p[n] == '\0' || p[n] == ' ';

		if (starts && ends)
			return true;
		p += n;
	}
	return false;
}

static int
set_number(const struct key_def *k, long *slot, const char *value,
    char *err, size_t size)
{
	char *end;
	long v;

	if (k->type == KEY_SIZE) {
		if (parse_size(value, &v) == -1) {
			snprintf(err, size, "[%s] %s: not a size (like 16M)",
			    k->section, k->name);
			return -1;
		}
	} else {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			snprintf(err, size, "[%s] %s: not a whole number",
			    k->section, k->name);
			return -1;
		}
	}
	if (v < k->min || v > k->max) {
		snprintf(err, size, "[%s] %s: %ld is outside %ld..%ld",
		    k->section, k->name, v, k->min, k->max);
		return -1;
	}
	*slot = v;
	return 0;
}

/* Stores value for key k; the message names the key, never the value,
 * since the value may be a password. */
static int
set_value(struct config *c, const struct key_def *k, const char *value,
    char *err, size_t size)
{
	void *slot = (char *)c + k->offset;
	char *copy;

	if (k->type == KEY_INT || k->type == KEY_SIZE)
		return set_number(k, slot, value, err, size);
	if (k->type == KEY_CHOICE && !choice_allowed(k->choices, value)) {
		snprintf(err, size, "[%s] %s: must be one of: %s",
		    k->section, k->name, k->choices);
		return -1;
	}
	if ((copy = strdup(value)) == NULL) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	free(*(char **)slot);
	*(char **)slot = copy;
	return 0;
}

static int
on_ini_entry(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse_state *ps = user;
	const struct key_def *k;
	size_t i;
	char msg[256];

	if ((k = find_key(section, name, &i)) == NULL) {
		if (!section_known(section))
			snprintf(msg, sizeof(msg), "unknown section [%s]",
			    section);
		else
			snprintf(msg, sizeof(msg), "unknown key %s in [%s]",
			    name, section);
	} else if (ps->seen[i]) {
		snprintf(msg, sizeof(msg), "[%s] %s given twice (an indented "
		    "line continues the key above it)", section, name);
	} else {
		ps->seen[i] = true;
		if (set_value(ps->config, k, value, msg, sizeof(msg)) == 0)
			return 1;
	}
	if (ps->error[0] == '\0')
		snprintf(ps->error, sizeof(ps->error), "%s", msg);
	return 0;
}

static int
set_defaults(struct config *c, char *err, size_t size)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (set_value(c, &keys[i], keys[i].fallback, err, size) == -1)
			return -1;
	return 0;
}

/* inih reads a line longer than its buffer in pieces, which would turn
 * the rest of the line into a bogus entry: refuse such files first. */
static int
check_line_lengths(FILE *f, const char *path, char *err, size_t size)
{
	int line = 1, len = 0, ch;

	while ((ch = getc(f)) != EOF) {
		if (ch == '\n') {
			line++;
			len = 0;
		} else if (++len > 190) {
			snprintf(err, size, "%s:%d: line longer than 190 "
			    "characters", path, line);
			return -1;
		}
	}
	rewind(f);
	return 0;
}

static int
parse_file(struct config *c, const char *path, char *err, size_t size)
{
	struct parse_state ps = { .config = c };
	FILE *f;
	int line;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, size, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (check_line_lengths(f, path, err, size) == -1) {
		fclose(f);
		return -1;
	}
	line = ini_parse_file(f, on_ini_entry, &ps);
	fclose(f);
	if (line == 0)
		return 0;
	snprintf(err, size, "%s:%d: %s", path, line,
	    ps.error[0] != '\0' ? ps.error : "syntax error");
	return -1;
}

static int
apply_environment(struct config *c, char *err, size_t size)
{
	char var[128], msg[200];
	const char *value;

	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(var, sizeof(var), "MQTTRULES_%s_%s", keys[i].section,
		    keys[i].name);
		for (char *p = var; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if ((value = getenv(var)) == NULL)
			continue;
		if (set_value(c, &keys[i], value, msg, sizeof(msg)) == -1) {
			snprintf(err, size, "environment %s: %s", var, msg);
			return -1;
		}
	}
	return 0;
}

static const char *
default_path(void)
{
	static const char *const candidates[] = {
		"etc/mqttrules.ini", "/etc/mqttrules/mqttrules.ini"
	};

	for (size_t i = 0; i < 2; i++)
		if (access(candidates[i], F_OK) == 0)
			return candidates[i];
	return NULL;
}

int
config_load(struct config *c, const char *path, char *err, size_t size)
{
	memset(c, 0, sizeof(*c));
	if (set_defaults(c, err, size) == -1)
		return -1;
	if (path == NULL)
		path = default_path();
	if (path != NULL) {
		if ((c->path = strdup(path)) == NULL) {
			snprintf(err, size, "out of memory");
			return -1;
		}
		if (parse_file(c, path, err, size) == -1)
			return -1;
	}
	return apply_environment(c, err, size);
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == KEY_STRING || keys[i].type == KEY_CHOICE)
			free(*(char **)((char *)c + keys[i].offset));
	free(c->path);
	memset(c, 0, sizeof(*c));
}
