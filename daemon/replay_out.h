/* mqttrules test: the actions it prints, one JSON object per line. */
#ifndef MQTTRULES_REPLAY_OUT_H
#define MQTTRULES_REPLAY_OUT_H

#include <stdio.h>

#include <curl/curl.h>
#include <lua.h>

/* L is a state of the replay's own, used to encode JSON; at is counted
 * from start. */
void	replay_out_open(lua_State *L, FILE *, double start);

/* {"at": ..., "rule": ..., "action": ... then fields, then the end. */
void	replay_out_begin(const char *rule, const char *action);
void	replay_out_string(const char *name, const char *value);
void	replay_out_number(const char *name, long long value);
void	replay_out_bool(const char *name, int value);
void	replay_out_body(const char *name, const char *body, size_t len);
void	replay_out_headers(const char *name, const struct curl_slist *);
void	replay_out_end(void);

#endif
