/* File names under the daemon's directories. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

char *
path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *path = malloc(n);

	if (path != NULL)
		snprintf(path, n, "%s/%s", dir, name);
	return path;
}
