/* Rule files: one Lua state each, their handlers, and the coroutines
 * that run them. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "config.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "path.h"
#include "queue.h"
#include "rule.h"
#include "timer.h"
#include "topic.h"

/* Allocates for one rule's state, refusing growth past its limit so a
 * runaway rule meets a memory error instead of the daemon's OOM. */
static void *
rule_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct rule *r = ud;
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		r->mem_used -= old;
		return NULL;
	}
	if (nsize > old && r->mem_limit > 0 &&
	    r->mem_used + (nsize - old) > r->mem_limit)
		return NULL;
	if ((p = realloc(ptr, nsize)) == NULL)
		return NULL;
	r->mem_used = r->mem_used - old + nsize;
	return p;
}

static int
on_panic(lua_State *L)
{
	log_error("lua: unprotected error: %s", lua_tostring(L, -1));
	abort();
}

/* Keeps load() to text chunks: bytecode can crash the interpreter. */
static int
load_text_only(lua_State *L)
{
	int n = lua_gettop(L);

	lua_settop(L, 4);
	lua_pushliteral(L, "t");
	lua_replace(L, 3);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n < 4 ? 4 : n, LUA_MULTRET);
	return lua_gettop(L);
}

/* Lets a rule collect and measure, not stop or retune the collector
 * that its memory limit relies on. */
static int
collect_garbage_safely(lua_State *L)
{
	static const char *const allowed[] = { "collect", "count", "step",
	    "isrunning", NULL };
	const char *opt = luaL_optstring(L, 1, "collect");

	for (int i = 0; allowed[i] != NULL; i++) {
		if (strcmp(opt, allowed[i]) == 0) {
			lua_pushvalue(L, lua_upvalueindex(1));
			lua_insert(L, 1);
			lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
			return lua_gettop(L);
		}
	}
	return luaL_error(L, "collectgarbage(\"%s\") is not allowed in "
	    "rules", opt);
}

/* getmetatable("") would hand out the string library's metatable; the
 * field makes it return false and setmetatable refuse. */
static void
hide_string_metatable(lua_State *L)
{
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
}

static void
open_library(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_requiref(L, name, open, 1);
	lua_pop(L, 1);
}

/* The library set of the contract: base without dofile, loadfile and
 * binary load; string without dump; table, math, utf8, coroutine. */
static void
open_sandbox(lua_State *L)
{
	open_library(L, LUA_GNAME, luaopen_base);
	open_library(L, LUA_STRLIBNAME, luaopen_string);
	open_library(L, LUA_TABLIBNAME, luaopen_table);
	open_library(L, LUA_MATHLIBNAME, luaopen_math);
	open_library(L, LUA_UTF8LIBNAME, luaopen_utf8);
	open_library(L, LUA_COLIBNAME, luaopen_coroutine);

	lua_pushnil(L);
	lua_setglobal(L, "dofile");
	lua_pushnil(L);
	lua_setglobal(L, "loadfile");
	lua_getglobal(L, "load");
	lua_pushcclosure(L, load_text_only, 1);
	lua_setglobal(L, "load");
	lua_getglobal(L, "string");
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	lua_getglobal(L, "collectgarbage");
	lua_pushcclosure(L, collect_garbage_safely, 1);
	lua_setglobal(L, "collectgarbage");
	hide_string_metatable(L);
}

static int
open_state(lua_State *L)
{
	struct rule *r = lua_touserdata(L, 1);

	open_sandbox(L);
	lapi_open(L, r);
	return 0;
}

static char *
rule_name_of(const char *file)
{
	size_t n = strlen(file);

	return strndup(file, n - 4);	/* without ".lua" */
}

static int
run_chunk(struct rule *r, char *err, size_t size)
{
	lua_State *L = r->L;
	int rc;

	/* Messages from the chunk already start with file:line, which is
	 * what a load error needs; no traceback. */
	if (luaL_loadfilex(L, r->path, "t") != LUA_OK) {
		snprintf(err, size, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return -1;
	}
	r->loading = true;
	rc = lua_pcall(L, 0, 0, 0);
	r->loading = false;
	if (rc != LUA_OK) {
		const char *msg = lua_tostring(L, -1);

		if (msg == NULL)
			msg = "error object is not a string";
		/* Errors raised with a position start with the path; the
		 * others (a limit, error({})) get it here. */
		if (strncmp(msg, r->path, strlen(r->path)) == 0)
			snprintf(err, size, "%s", msg);
		else
			snprintf(err, size, "%s: %s", r->path, msg);
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

static struct rule *
rule_new(const char *path, const struct config *c,
    struct counter_store *counters)
{
	const char *base = strrchr(path, '/');
	struct rule *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->name = rule_name_of(base != NULL ? base + 1 : path);
	r->path = strdup(path);
	if (r->name == NULL || r->path == NULL) {
		free(r->name);
		free(r->path);
		free(r);
		return NULL;
	}
	r->mem_limit = (size_t)c->rules_max_memory;
	r->max_instructions = c->rules_max_instructions;
	r->default_qos = (int)c->mqtt_qos;
	r->restore_ref = LUA_NOREF;
	r->counters = counters;
	r->config = c;
	return r;
}

void
rule_free(struct rule *r)
{
	struct invocation *inv, *next;

	lapi_timer_forget(r, NULL);
	timer_cancel_owner(r);
	if (r->L != NULL)
		lua_close(r->L);
	for (inv = r->running; inv != NULL; inv = next) {
		next = inv->next;
		free(inv->topic);
		free(inv);
	}
	for (size_t i = 0; i < r->nhandlers; i++)
		free(r->handlers[i].filter);
	for (size_t i = 0; i < r->nenv; i++)
		free(r->env[i].name);
	free(r->env);
	free(r->handlers);
	free(r->name);
	free(r->path);
	free(r);
}

/* Creates the rule's state and runs its chunk; on failure err holds a
 * message that starts with the file and line. */
static int
rule_open(struct rule *r, char *err, size_t size)
{
	if ((r->L = lua_newstate(rule_alloc, r)) == NULL) {
		snprintf(err, size, "%s: cannot create a Lua state", r->path);
		return -1;
	}
	lua_atpanic(r->L, on_panic);
	rule_mark_state(r->L, r);
	lua_pushcfunction(r->L, open_state);
	lua_pushlightuserdata(r->L, r);
	if (lua_pcall(r->L, 1, 0, 0) != LUA_OK) {
		snprintf(err, size, "%s: %s", r->path,
		    lua_tostring(r->L, -1));
		return -1;
	}
	return run_chunk(r, err, size);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_rule_file(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

char **
rule_list_files(const char *dir, size_t *n)
{
	DIR *d;
	struct dirent *e;
	char **paths = NULL, **grown;

	*n = 0;
	errno = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (!is_rule_file(e->d_name))
			continue;
		if ((grown = realloc(paths, (*n + 1) * sizeof(*paths))) ==
		    NULL)
			break;
		paths = grown;
		if ((paths[*n] = path_join(dir, e->d_name)) != NULL)
			(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(paths, *n, sizeof(*paths), compare_names);
	errno = 0;
	return paths;
}

void
rule_files_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

static void
append_rule(struct rule_set *rs, struct rule *r)
{
	struct rule **tail = &rs->rules;

	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = r;
	rs->count++;
}

struct rule *
rule_load_file(const char *path, const struct config *c,
    struct counter_store *counters, char *err, size_t size)
{
	struct rule *r;

	if ((r = rule_new(path, c, counters)) == NULL) {
		snprintf(err, size, "%s: out of memory", path);
		return NULL;
	}
	if (stat(path, &r->stamp) == -1) {
		snprintf(err, size, "%s: %s", path, strerror(errno));
		rule_free(r);
		return NULL;
	}
	if (rule_open(r, err, size) == -1) {
		rule_free(r);
		return NULL;
	}
	return r;
}

/* Loads one file; returns 0, or -1 after logging why it failed. */
static int
load_one(struct rule_set *rs, const char *path, const struct config *c,
    struct counter_store *counters)
{
	struct rule *r;
	char err[1024];

	if ((r = rule_load_file(path, c, counters, err, sizeof(err))) ==
	    NULL) {
		log_error("%s", err);
		return -1;
	}
	append_rule(rs, r);
	return 0;
}

int
rule_set_load_files(struct rule_set *rs, const struct config *c,
    struct counter_store *counters, char *const *paths, size_t n)
{
	int failed = 0;

	memset(rs, 0, sizeof(*rs));
	rs->default_qos = (int)c->mqtt_qos;
	for (size_t i = 0; i < n; i++)
		if (load_one(rs, paths[i], c, counters) == -1)
			failed++;
	return failed;
}

int
rule_set_load(struct rule_set *rs, const struct config *c,
    struct counter_store *counters)
{
	char **paths;
	size_t n;
	int failed;

	paths = rule_list_files(c->rules_dir, &n);
	if (paths == NULL && errno != 0) {
		log_error("%s: cannot read rules directory: %s", c->rules_dir,
		    strerror(errno));
		memset(rs, 0, sizeof(*rs));
		return -1;
	}
	failed = rule_set_load_files(rs, c, counters, paths, n);
	rule_files_free(paths, n);
	return failed;
}

void
rule_set_free(struct rule_set *rs)
{
	struct rule *r, *next;

	for (r = rs->rules; r != NULL; r = next) {
		next = r->next;
		rule_free(r);
	}
	for (r = rs->retired; r != NULL; r = next) {
		next = r->next;
		rule_free(r);
	}
	memset(rs, 0, sizeof(*rs));
}

void
rule_subs_free(struct topic_sub *subs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(subs[i].filter);
	free(subs);
}

struct topic_sub *
rule_set_subscriptions(const struct rule_set *rs, size_t *n)
{
	struct topic_sub *subs = NULL, *grown;
	const struct rule *r;

	*n = 0;
	for (r = rs->rules; r != NULL; r = r->next) {
		for (size_t i = 0; i < r->nhandlers; i++) {
			grown = realloc(subs, (*n + 1) * sizeof(*subs));
			if (grown == NULL)
				goto fail;
			subs = grown;
			subs[*n].qos = r->handlers[i].qos;
			if ((subs[*n].filter = strdup(r->handlers[i].filter)) ==
			    NULL)
				goto fail;
			(*n)++;
		}
	}
	if (topic_subs_reduce(subs, n) == 0)
		return subs;
fail:
	rule_subs_free(subs, *n);
	*n = 0;
	return NULL;
}
