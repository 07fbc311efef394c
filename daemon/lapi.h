/* The Lua API offered to rule files: one lapi_*.c file per library. */
#ifndef MQTTRULES_LAPI_H
#define MQTTRULES_LAPI_H

#include <stdbool.h>

#include <lua.h>

struct counter_store;
struct rule;

/* Pushes the `counter` table (incr, get, reset, clear) bound to store. */
void	lapi_counter_push(lua_State *L, struct counter_store *store);

/* Sets the globals http_post and http_request. */
void	lapi_http_open(lua_State *L, struct rule *);

/* Pushes the `timer` table (every, after, cron). */
void	lapi_timer_push(lua_State *L, struct rule *);

/* Keyed timers (timer.after with opts.key) across restarts: saved to
 * path, restored from it to each rule's timer.restore function; on a
 * reload, handed from the old version of a rule to its heir (NULL:
 * dropped). */
struct rule_set;
bool	lapi_timer_dirty(void);
int	lapi_timer_save(const char *path);
int	lapi_timer_restore(struct rule_set *, const char *path);
void	lapi_timer_forget(struct rule *, struct rule *heir);

/* Publishes, or records in test mode; set by the command that runs
 * the rules. Returns 0 or -1. */
typedef int	lapi_publish_fn(const char *rule, const char *topic,
		    const char *payload, size_t len, int qos, int retain);
void	lapi_set_publisher(lapi_publish_fn *);

/* The rule whose API function is running: upvalue 1 of each. */
struct rule	*lapi_rule(lua_State *L);

#endif
