/* Files under the daemon's directories: their names, and replacing one
 * whole. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

FILE *
path_replace_open(const char *path, char *tmp, size_t size)
{
	FILE *f;
	int fd;

	snprintf(tmp, size, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return NULL;
	if ((f = fdopen(fd, "w")) == NULL)
		close(fd);
	return f;
}

int
path_replace_commit(FILE *f, const char *tmp, const char *path, int failed)
{
	if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
		failed = 1;
	if (fclose(f) != 0 || failed || rename(tmp, path) == -1) {
		remove(tmp);
		return -1;
	}
	return 0;
}
