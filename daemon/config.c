/* The daemon's configuration: INI file, then environment overrides. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"

enum key_type { KEY_STRING, KEY_INT, KEY_SIZE, KEY_CHOICE };

/* Checks a string value; returns NULL when fine, else what is wrong
 * (never quoting the value, which may be a secret). */
typedef const char	*value_check(const char *);

struct key_def {
	const char	*section;
	const char	*name;
	enum key_type	 type;
	size_t		 offset;
	const char	*fallback;
	long		 min, max;	/* KEY_INT, KEY_SIZE */
	const char	*choices;	/* KEY_CHOICE: space separated */
	value_check	*check;		/* KEY_STRING, may be NULL */
};

static value_check	check_url, check_not_empty, check_listen,
			check_readable;

#define STR(s, k, field, def) \
	{ s, k, KEY_STRING, offsetof(struct config, field), def, 0, 0, NULL, \
	    NULL }
#define STRC(s, k, field, def, fn) \
	{ s, k, KEY_STRING, offsetof(struct config, field), def, 0, 0, NULL, \
	    fn }
#define INT(s, k, field, def, lo, hi) \
	{ s, k, KEY_INT, offsetof(struct config, field), def, lo, hi, NULL, \
	    NULL }
#define SIZE(s, k, field, def, lo, hi) \
	{ s, k, KEY_SIZE, offsetof(struct config, field), def, lo, hi, NULL, \
	    NULL }
#define CHOICE(s, k, field, def, list) \
	{ s, k, KEY_CHOICE, offsetof(struct config, field), def, 0, 0, list, \
	    NULL }

static const struct key_def keys[] = {
	STRC("mqtt", "url", mqtt_url, "mqtt://127.0.0.1:1883", check_url),
	STRC("mqtt", "client_id", mqtt_client_id, "mqttrules",
	    check_not_empty),
	STR("mqtt", "username", mqtt_username, ""),
	STR("mqtt", "password", mqtt_password, ""),
	INT("mqtt", "qos", mqtt_qos, "1", 0, 2),
	CHOICE("mqtt", "session", mqtt_session, "persistent",
	    "persistent clean"),
	INT("mqtt", "keepalive", mqtt_keepalive, "30", 5, 65535),
	STRC("mqtt", "ca_file", mqtt_ca_file, "", check_readable),
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
	STRC("daemon", "metrics", daemon_metrics, "127.0.0.1:9883",
	    check_listen),
	CHOICE("daemon", "journal", daemon_journal, "on", "on off"),
	CHOICE("daemon", "journal_sync", daemon_journal_sync, "periodic",
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

static const char *
check_url(const char *v)
{
	if (strncmp(v, "mqtt://", 7) != 0 && strncmp(v, "mqtts://", 8) != 0)
		return "must start with mqtt:// or mqtts://";
	return NULL;
}

static const char *
check_not_empty(const char *v)
{
	return v[0] == '\0' ? "must not be empty" : NULL;
}

static const char *
check_readable(const char *v)
{
	struct stat st;

	if (v[0] == '\0')
		return NULL;
	if (stat(v, &st) == -1 || !S_ISREG(st.st_mode) ||
	    access(v, R_OK) == -1)
		return "is not a readable file";
	return NULL;
}

/* Empty, or host:port with a port of 0 to 65535 ([v6]:port too). */
static const char *
check_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (v[0] == '\0')
		return NULL;
	if (colon == NULL || colon == v)
		return "must be host:port, or empty";
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return "must be host:port with a port of 0 to 65535";
	return NULL;
}

/* Stores value for key k; the message names the key, never the value,
 * since the value may be a password. */
static int
set_value(struct config *c, const struct key_def *k, const char *value,
    char *err, size_t size)
{
	void *slot = (char *)c + k->offset;
	const char *why;
	char *copy;

	if (k->type == KEY_INT || k->type == KEY_SIZE)
		return set_number(k, slot, value, err, size);
	if (k->check != NULL && (why = k->check(value)) != NULL) {
		snprintf(err, size, "[%s] %s: %s", k->section, k->name, why);
		return -1;
	}
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
	struct stat st;
	FILE *f;
	int line;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, size, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, size, "%s: is a directory", path);
		fclose(f);
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

extern char **environ;

/* True when name (after MQTTRULES_) starts with a known section and
 * an underscore: variables like MQTTRULES_BIN are not overrides. */
static bool
names_a_section(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++) {
		size_t n = strlen(keys[i].section);

		if (strncasecmp(name, keys[i].section, n) == 0 &&
		    name[n] == '_')
			return true;
	}
	return false;
}

/* A misspelt override would otherwise be ignored without a word. */
static int
check_unknown_environment(char *err, size_t size)
{
	char var[128];
	bool known;

	for (char **e = environ; *e != NULL; e++) {
		if (strncmp(*e, "MQTTRULES_", 10) != 0 ||
		    !names_a_section(*e + 10))
			continue;
		known = false;
		for (size_t i = 0; i < NKEYS && !known; i++) {
			snprintf(var, sizeof(var), "MQTTRULES_%s_%s=",
			    keys[i].section, keys[i].name);
			for (char *p = var; *p != '\0'; p++)
				*p = (char)toupper((unsigned char)*p);
			known = strncmp(*e, var, strlen(var)) == 0;
		}
		if (!known) {
			snprintf(err, size, "environment %.*s: no such key",
			    (int)strcspn(*e, "="), *e);
			return -1;
		}
	}
	return 0;
}

static int
check_together(const struct config *c, char *err, size_t size)
{
	if (c->mqtt_password[0] != '\0' && c->mqtt_username[0] == '\0') {
		snprintf(err, size, "%s: [mqtt] password is set without a "
		    "username, which MQTT does not allow",
		    c->path != NULL ? c->path : "configuration");
		return -1;
	}
	return 0;
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
	if (check_unknown_environment(err, size) == -1 ||
	    apply_environment(c, err, size) == -1)
		return -1;
	return check_together(c, err, size);
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
