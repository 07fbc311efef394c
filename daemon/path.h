/* Files under the daemon's directories: their names, and replacing one
 * whole. */
#ifndef MQTTRULES_PATH_H
#define MQTTRULES_PATH_H

#include <stddef.h>
#include <stdio.h>

/* dir/name in a malloc'd string; NULL on allocation failure. */
char	*path_join(const char *dir, const char *name);

/* Opens path.tmp (in tmp, mode 0600) for a whole new version of path;
 * NULL on failure. */
FILE	*path_replace_open(const char *path, char *tmp, size_t size);

/* Forces the new version to disk and renames it over path, so that a
 * crash leaves the old or the new one whole. With failed set, or on
 * any error, drops it instead. Returns 0 or -1. */
int	path_replace_commit(FILE *f, const char *tmp, const char *path,
	    int failed);

#endif
