/* The daemon's notion of time: the wall clock, or a virtual one. */
#ifndef MQTTRULES_CLOCK_H
#define MQTTRULES_CLOCK_H

/* Seconds since the epoch as a float; the virtual time once
 * clock_set_virtual was called. */
double	clock_now(void);

/* Switches to a virtual clock reading t; later calls move it. */
void	clock_set_virtual(double t);

#endif
