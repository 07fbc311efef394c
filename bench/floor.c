/*
 * The RSS floor of the daemon's shared libraries: a program linked with
 * the same libraries (the Makefile keeps them even though nothing here
 * calls them) that prints its own VmRSS, RssAnon and RssFile in kB.
 * Whatever the daemon holds above this is its own.
 */
#include <stdio.h>
#include <string.h>

int
main(void)
{
	static const char *const fields[] = { "VmRSS:", "RssAnon:",
	    "RssFile:" };
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL)
		for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
			if (strncmp(line, fields[i], strlen(fields[i])) == 0)
				fputs(line, stdout);
	fclose(f);
	return 0;
}
