/* The Lua API offered to rule files: one lapi_*.c file per library. */
#ifndef MQTTRULES_LAPI_H
#define MQTTRULES_LAPI_H

#include <lua.h>

struct counter_store;

/* Pushes the `counter` table (incr, get, reset, clear) bound to store. */
void	lapi_counter_push(lua_State *L, struct counter_store *store);

#endif
