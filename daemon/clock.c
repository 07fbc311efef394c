/* The daemon's notion of time: the wall clock, or a virtual one. */
#include <stdbool.h>
#include <time.h>

#include "clock.h"

static bool	virtual_on;
static double	virtual_now;

double
clock_now(void)
{
	struct timespec ts;

	if (virtual_on)
		return virtual_now;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
clock_set_virtual(double t)
{
	virtual_on = true;
	virtual_now = t;
}
