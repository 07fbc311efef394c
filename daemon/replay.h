/* mqttrules test: recorded events through rules on a virtual clock. */
#ifndef MQTTRULES_REPLAY_H
#define MQTTRULES_REPLAY_H

/* Runs the test command on argv (the words after "test"); returns the
 * exit status: 0 when no rule failed, 1 when one did or a rule or
 * input file is bad, 2 on bad usage. */
int	replay_main(int argc, char **argv);

/* Parses an ISO 8601 UTC time like 2025-01-01T00:00:00Z (fraction and
 * +hh:mm offset allowed) into seconds since the epoch; -1 when bad. */
int	replay_parse_time(const char *text, double *out);

#endif
