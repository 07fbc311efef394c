/* Dead letters: events a rule failed for good, kept in the `test`
 * event format so that they can be replayed or published again. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "deadletter.h"
#include "json.h"
#include "log.h"
#include "path.h"
#include "queue.h"

static FILE		*file;
static lua_State	*J;	/* encodes strings as JSON */

int
deadletter_open(const char *dir)
{
	char *path = path_join(dir, "dead-letters.jsonl");
	int fd;

	if (path == NULL)
		return -1;
	/* Dead letters hold payloads: readable by the daemon's user only. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	free(path);
	if (fd != -1 && (file = fdopen(fd, "a")) == NULL)
		close(fd);
	if (file == NULL || (J = luaL_newstate()) == NULL) {
		deadletter_close();
		return -1;
	}
	return 0;
}

void
deadletter_close(void)
{
	if (file != NULL)
		fclose(file);
	if (J != NULL)
		lua_close(J);
	file = NULL;
	J = NULL;
}

static int
put_string(lua_State *L)
{
	size_t len;
	const char *s = lua_tolstring(L, 1, &len);

	json_encode_push(L, 1);
	s = lua_tolstring(L, -1, &len);
	fwrite(s, 1, len, file);
	return 0;
}

/* Writes s as a JSON string; invalid UTF-8 becomes U+FFFD, so a
 * binary payload is not kept byte for byte. */
static void
put_field(const char *name, const char *s, size_t len)
{
	fprintf(file, ",\"%s\":", name);
	lua_pushcfunction(J, put_string);
	lua_pushlstring(J, s, len);
	if (lua_pcall(J, 1, 0, 0) != LUA_OK) {
		fputs("null", file);
		lua_pop(J, 1);
	}
}

int
deadletter_write(const char *rule, const struct message *m,
    const char *reason)
{
	time_t t = (time_t)m->time;
	struct tm tm;
	char when[32];

	if (file == NULL)
		return 0;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(file, "{\"at\":0,\"time\":\"%s\"", when);
	put_field("topic", m->topic, strlen(m->topic));
	if (m->payload_len > 0 && json_valid(m->payload, m->payload_len)) {
		fputs(",\"payload\":", file);
		fwrite(m->payload, 1, m->payload_len, file);
	} else
		put_field("payload_raw", m->payload, m->payload_len);
	fprintf(file, ",\"qos\":%d,\"retain\":%s", m->qos,
	    m->retained ? "true" : "false");
	put_field("rule", rule, strlen(rule));
	put_field("reason", reason, strlen(reason));
	fputs("}\n", file);
	return fflush(file) == 0;
}
