/* The coroutines that run rule handlers and timer callbacks: start,
 * suspend in an API call, resume, and finish or fail. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "json.h"
#include "log.h"
#include "queue.h"
#include "rule.h"
#include "topic.h"

#define HOOK_EVERY	1000

static const struct rule_observer	*observer;

void
rule_set_observer(const struct rule_observer *o)
{
	observer = o;
}

const struct rule_observer *
rule_observer(void)
{
	return observer;
}

/* Every thread of a rule's state holds the rule in its extra space:
 * lua_newthread copies it from the main thread. */
static struct rule *
owner(lua_State *L)
{
	return *(struct rule **)lua_getextraspace(L);
}

struct invocation *
rule_active(lua_State *L)
{
	return owner(L)->active;
}

struct invocation *
rule_current(lua_State *L)
{
	struct invocation *inv = owner(L)->active;

	return inv != NULL && inv->co == L ? inv : NULL;
}

/* Counts instructions against the running invocation, whatever
 * coroutine of the rule runs them (its own ones too), or against the
 * load. Once over budget it fails on every later hook call, so a pcall
 * in the rule cannot swallow the abort. */
static void
count_instructions(lua_State *L, lua_Debug *ar)
{
	struct rule *r = owner(L);
	long *used = r->active != NULL ? &r->active->instructions :
	    &r->load_instructions;

	(void)ar;
	*used += HOOK_EVERY;
	if (*used <= r->max_instructions)
		return;
	lua_sethook(L, count_instructions, LUA_MASKCOUNT, 1);
	if (r->active != NULL)
		lua_sethook(r->active->co, count_instructions, LUA_MASKCOUNT,
		    1);
	luaL_error(L, "instruction limit of %d reached",
	    (int)r->max_instructions);
}

void
rule_mark_state(lua_State *L, struct rule *r)
{
	*(struct rule **)lua_getextraspace(L) = r;
	lua_sethook(L, count_instructions, LUA_MASKCOUNT, HOOK_EVERY);
}

static void
unlink_invocation(struct invocation *inv)
{
	struct rule *r = inv->rule;

	if (inv->prev != NULL)
		inv->prev->next = inv->next;
	else
		r->running = inv->next;
	if (inv->next != NULL)
		inv->next->prev = inv->prev;
}

static void
finish(struct invocation *inv)
{
	unlink_invocation(inv);
	luaL_unref(inv->rule->L, LUA_REGISTRYINDEX, inv->co_ref);
	if (inv->delivery != NULL)
		inv->delivery->ended(inv->delivery, inv->rule, inv->failure);
	free(inv->failure);
	free(inv->topic);
	free(inv);
}

/* The traceback allocates: built protected, since the failure may be
 * the rule running out of memory. */
static int
traceback_of(lua_State *L)
{
	luaL_traceback(L, lua_touserdata(L, 1), lua_touserdata(L, 2), 0);
	return 1;
}

static void
fail(struct invocation *inv, const char *what)
{
	lua_State *L = inv->rule->L;
	const char *msg = lua_tostring(inv->co, -1);

	if (msg == NULL)
		msg = "(error object is not a string)";
	if (observer != NULL)
		observer->failed(inv->rule, inv->topic, msg);
	if (inv->failure == NULL)
		inv->failure = strdup(msg);
	lua_pushcfunction(L, traceback_of);
	lua_pushlightuserdata(L, inv->co);
	lua_pushlightuserdata(L, (void *)msg);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		lua_pop(L, 1);
		lua_pushstring(L, msg);
	}
	log_at(LOG_ERROR, &(struct log_origin){ .rule = inv->rule->name,
	    .topic = inv->topic },
	    "%s failed: %s", what, lua_tostring(L, -1));
	lua_pop(L, 1);
	lua_resetthread(inv->co);
}

/* Runs the coroutine until it ends or suspends; ends the invocation
 * unless it waits in an API call. */
static void
step(struct invocation *inv, int nargs)
{
	int nres, rc;

	struct invocation *outer = inv->rule->active;

	inv->waiting = false;
	inv->rule->active = inv;
	rc = lua_resume(inv->co, inv->rule->L, nargs, &nres);
	inv->rule->active = outer;
	if (rc == LUA_YIELD && inv->waiting)
		return;
	if (rc == LUA_YIELD) {
		lua_pushliteral(inv->co, "coroutine.yield outside a coroutine "
		    "the rule created");
		rc = LUA_ERRRUN;
	}
	if (rc != LUA_OK)
		fail(inv, inv->topic != NULL ? "handler" : "timer callback");
	finish(inv);
}

struct push_call {
	rule_push_fn	*push;
	void		*arg;
};

static int
protected_push(lua_State *L)
{
	struct push_call *pc = lua_touserdata(L, 1);

	lua_pop(L, 1);
	return pc->push(L, pc->arg);
}

/* Builds values on the rule's main stack under protection, so that a
 * memory error becomes a failed event rather than a panic, then moves
 * them to co. Returns how many moved, or -1. */
static int
push_values(struct invocation *inv, rule_push_fn *push, void *arg)
{
	lua_State *L = inv->rule->L;
	struct push_call pc = { push, arg };
	int base = lua_gettop(L), n;

	lua_pushcfunction(L, protected_push);
	lua_pushlightuserdata(L, &pc);
	if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
		log_at(LOG_ERROR, &(struct log_origin){
		    .rule = inv->rule->name, .topic = inv->topic },
		    "cannot prepare the call: %s", lua_tostring(L, -1));
		lua_settop(L, base);
		return -1;
	}
	n = lua_gettop(L) - base;
	if (!lua_checkstack(inv->co, n + 1)) {
		lua_settop(L, base);
		return -1;
	}
	lua_xmove(L, inv->co, n);
	return n;
}

/* Creates the coroutine and anchors it in the registry; both allocate,
 * so this runs protected: a rule at its memory limit fails the call
 * instead of the process. */
static int
new_thread(lua_State *L)
{
	struct invocation *inv = lua_touserdata(L, 1);

	inv->co = lua_newthread(L);
	inv->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static struct invocation *
invocation_new(struct rule *r, const char *topic)
{
	struct invocation *inv;
	lua_State *L = r->L;

	if (!lua_checkstack(L, 4) || (inv = calloc(1, sizeof(*inv))) == NULL)
		return NULL;
	if (topic != NULL && (inv->topic = strdup(topic)) == NULL) {
		free(inv);
		return NULL;
	}
	inv->rule = r;
	lua_pushcfunction(L, new_thread);
	lua_pushlightuserdata(L, inv);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		lua_pop(L, 1);
		free(inv->topic);
		free(inv);
		return NULL;
	}
	lua_sethook(inv->co, count_instructions, LUA_MASKCOUNT, HOOK_EVERY);
	inv->next = r->running;
	if (r->running != NULL)
		r->running->prev = inv;
	r->running = inv;
	return inv;
}

/* A call that could not start still fails visibly: in the log, to the
 * observer (mqttrules test) and to its delivery. */
static void
start_failed(struct rule *r, const char *topic, struct delivery *d,
    const char *why)
{
	log_at(LOG_ERROR, &(struct log_origin){ .rule = r->name,
	    .topic = topic }, "%s", why);
	if (observer != NULL)
		observer->failed(r, topic, why);
	if (d != NULL)
		d->ended(d, r, why);
}

void
rule_start(struct rule *r, int fn_ref, const char *topic,
    rule_push_fn *push, void *arg, struct delivery *d)
{
	struct invocation *inv;
	int n;

	if ((inv = invocation_new(r, topic)) == NULL) {
		start_failed(r, topic, d, "not enough memory to start the "
		    "handler");
		return;
	}
	inv->delivery = d;
	lua_rawgeti(inv->co, LUA_REGISTRYINDEX, fn_ref);
	if ((n = push_values(inv, push, arg)) == -1) {
		inv->failure = strdup("cannot prepare the call");
		if (observer != NULL)
			observer->failed(r, topic, "cannot prepare the call: "
			    "not enough memory");
		finish(inv);
		return;
	}
	step(inv, n);
}

void
rule_resume(struct invocation *inv, rule_push_fn *push, void *arg)
{
	int n;

	if ((n = push_values(inv, push, arg)) == -1) {
		lua_pushliteral(inv->co, "out of memory resuming the call");
		fail(inv, inv->topic != NULL ? "handler" : "timer callback");
		finish(inv);
		return;
	}
	step(inv, n);
}

size_t
rule_set_running(const struct rule_set *rs)
{
	size_t n = 0;

	for (const struct rule *r = rs->rules; r != NULL; r = r->next)
		for (struct invocation *i = r->running; i != NULL;
		    i = i->next)
			n++;
	return n;
}

void
rule_set_collect(struct rule_set *rs)
{
	for (struct rule *r = rs->rules; r != NULL; r = r->next)
		lua_gc(r->L, LUA_GCCOLLECT);
}

/* The handler's two arguments: the decoded payload (nil when it is not
 * JSON) and the msg table. */
int
rule_push_message(lua_State *L, void *arg)
{
	const struct message *m = arg;

	if (m->payload_len == 0 ||
	    !json_decode_push(L, m->payload, m->payload_len))
		lua_pushnil(L);
	lua_createtable(L, 0, 5);
	lua_pushstring(L, m->topic);
	lua_setfield(L, -2, "topic");
	lua_pushlstring(L, m->payload, m->payload_len);
	lua_setfield(L, -2, "payload");
	lua_pushinteger(L, m->qos);
	lua_setfield(L, -2, "qos");
	lua_pushboolean(L, m->retained);
	lua_setfield(L, -2, "retain");
	lua_pushnumber(L, m->time);
	lua_setfield(L, -2, "time");
	return 2;
}
