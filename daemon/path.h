/* File names under the daemon's directories. */
#ifndef MQTTRULES_PATH_H
#define MQTTRULES_PATH_H

/* dir/name in a malloc'd string; NULL on allocation failure. */
char	*path_join(const char *dir, const char *name);

#endif
