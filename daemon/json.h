/* JSON text to Lua values and back, exact for 64-bit integers. */
#ifndef MQTTRULES_JSON_H
#define MQTTRULES_JSON_H

#include <stddef.h>

#include <lua.h>

/*
 * Decodes text[0..len) and pushes the value: objects and arrays as
 * tables marked with the json object/array metatables (so empty ones
 * encode back as they came), null as json.null, integral numbers that
 * fit in 64 bits as integers, other numbers as floats, strings byte for
 * byte. Returns 1 with the value pushed, or 0 with nothing pushed when
 * the text is not JSON. May raise a Lua memory error: call it in a
 * protected context.
 */
int	json_decode_push(lua_State *L, const char *text, size_t len);

/*
 * Encodes the value at idx and pushes the JSON text as a string. Tables
 * with the array mark, or whose keys are exactly 1..n with n > 0, become
 * arrays; other tables objects with their keys sorted (so output is
 * deterministic); json.raw values are embedded as they are. Raises a Lua
 * error on a cycle, nesting deeper than 64, a function, userdata, a
 * non-string non-array key, or a non-finite number.
 */
void	json_encode_push(lua_State *L, int idx);

/* True when text[0..len) parses as JSON. */
int	json_valid(const char *text, size_t len);

/* lua_CFunction that pushes the `json` library table: encode, decode,
 * null, raw. */
int	json_open(lua_State *L);

#endif
