/* The journal: every message is on disk before the broker learns that
 * the daemon has it, and stays there until every matching rule has
 * finished with it.
 *
 * One file: a version line, then records, each
 * [u32 length][u32 crc32][body], body
 * [u8 type][u64 id][fields]. A crash may leave a torn last record;
 * opening cuts it off. The file is rewritten with only what is
 * unfinished at open and whenever finished events make up most of it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "path.h"
#include "queue.h"

enum record_type { R_ARRIVED = 1, R_RULE_DONE = 2, R_DONE = 3 };

/* The first bytes of the file: a later layout gets a new number, so
 * that an old daemon never reads a new journal as torn records. */
static const char	magic[] = "mqttrules-journal 1\n";
#define MAGIC_LEN	(sizeof(magic) - 1)

#define HEADER		8
#define COMPACT_MIN	(1 << 20)	/* bytes before a rewrite pays */
#define MARKS_MAX	(64 << 10)	/* done records held back at most */

/* An unfinished event: its arrival record, kept to rewrite the file. */
struct live {
	uint64_t	 id;
	double		 time;
	char		*record;
	size_t		 record_len;
	char		**done;
	size_t		 ndone;
	bool		 gone;
};

struct journal {
	pthread_mutex_t	 lock;
	int		 fd;
	char		*path, *tmp_path, *dir;
	enum journal_sync sync;
	bool		 dirty;
	double		 last_sync;
	size_t		 bytes;
	size_t		 live_bytes;	/* of the unfinished arrivals */
	uint64_t	 last_id;
	struct live	*live;
	size_t		 nlive, cap, ngone;
	struct journal_pending *pending;
	size_t		 npending;
	char		*marks;		/* done records not yet written */
	size_t		 marks_len, marks_cap;
};

static uint32_t	crc_table[256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n-- > 0)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

int
journal_sync_parse(const char *s, enum journal_sync *out)
{
	static const char *const names[] = { "always", "periodic", "never" };

	for (int i = 0; i < 3; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum journal_sync)i;
			return 0;
		}
	}
	return -1;
}

/* Builds a whole record (header included) in a malloc'd buffer. */
static char *
make_record(enum record_type type, uint64_t id, const void *extra,
    size_t extra_len, size_t *len)
{
	uint32_t body = (uint32_t)(9 + extra_len), crc;
	char *r;

	if ((r = malloc(HEADER + body)) == NULL)
		return NULL;
	r[HEADER] = (char)type;
	memcpy(r + HEADER + 1, &id, 8);
	if (extra_len > 0)
		memcpy(r + HEADER + 9, extra, extra_len);
	crc = crc32_of((unsigned char *)r + HEADER, body);
	memcpy(r, &body, 4);
	memcpy(r + 4, &crc, 4);
	*len = HEADER + body;
	return r;
}

static char *
arrival_record(const struct message *m, uint64_t id, size_t *len)
{
	uint32_t tlen = (uint32_t)strlen(m->topic);
	uint32_t plen = (uint32_t)m->payload_len;
	size_t n = 2 + 8 + 4 + tlen + 4 + plen;
	char *extra, *p, *r;

	if ((p = extra = malloc(n)) == NULL)
		return NULL;
	*p++ = (char)m->qos;
	*p++ = (char)m->retained;
	memcpy(p, &m->time, 8);
	memcpy(p + 8, &tlen, 4);
	memcpy(p + 12, m->topic, tlen);
	memcpy(p + 12 + tlen, &plen, 4);
	memcpy(p + 16 + tlen, m->payload, plen);
	r = make_record(R_ARRIVED, id, extra, n, len);
	free(extra);
	return r;
}

/* The message in an arrival record's body (after type and id). */
static struct message *
parse_arrival(const char *p, size_t n)
{
	uint32_t tlen, plen;
	double time;
	char *topic;
	struct message *m;

	if (n < 14)
		return NULL;
	memcpy(&time, p + 2, 8);
	memcpy(&tlen, p + 10, 4);
	if (n < 18 + (size_t)tlen)
		return NULL;
	memcpy(&plen, p + 14 + tlen, 4);
	if (n != 18 + (size_t)tlen + plen)
		return NULL;
	if ((topic = strndup(p + 14, tlen)) == NULL)
		return NULL;
	m = message_new(topic, p + 18 + tlen, plen, p[0], p[1] != 0, time);
	free(topic);
	return m;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
append(struct journal *j, const char *r, size_t len)
{
	if (write_all(j->fd, r, len) == -1)
		return -1;
	j->bytes += len;
	j->dirty = true;
	return 0;
}

/* Done records wait in memory and go out in one write per loop turn:
 * one system call instead of one or two per event. */
static int
flush_marks(struct journal *j)
{
	int rc;

	if (j->marks_len == 0)
		return 0;
	rc = append(j, j->marks, j->marks_len);
	j->marks_len = 0;
	return rc;
}

static int
hold_mark(struct journal *j, const char *r, size_t len)
{
	if (j->marks_len + len > j->marks_cap) {
		size_t cap = j->marks_len + len > MARKS_MAX ?
		    j->marks_len + len : MARKS_MAX;
		char *p = realloc(j->marks, cap);

		if (p == NULL)
			return append(j, r, len);
		j->marks = p;
		j->marks_cap = cap;
	}
	memcpy(j->marks + j->marks_len, r, len);
	j->marks_len += len;
	return j->marks_len >= MARKS_MAX ? flush_marks(j) : 0;
}

/* Live events are kept in id order: ids only grow. */
static struct live *
find_live(struct journal *j, uint64_t id)
{
	size_t lo = 0, hi = j->nlive;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->live[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->nlive && j->live[lo].id == id && !j->live[lo].gone ?
	    &j->live[lo] : NULL;
}

static void
live_clear(struct live *l)
{
	free(l->record);
	for (size_t i = 0; i < l->ndone; i++)
		free(l->done[i]);
	free(l->done);
	memset(l, 0, sizeof(*l));
}

static int
add_live(struct journal *j, uint64_t id, double time, char *record,
    size_t len)
{
	struct live *grown;

	if (j->nlive == j->cap) {
		size_t cap = j->cap == 0 ? 64 : j->cap * 2;

		if ((grown = realloc(j->live, cap * sizeof(*grown))) == NULL)
			return -1;
		j->live = grown;
		j->cap = cap;
	}
	j->live[j->nlive++] = (struct live){ .id = id, .time = time,
	    .record = record, .record_len = len };
	j->live_bytes += len;
	return 0;
}

static int
add_done_rule(struct live *l, const char *rule, size_t len)
{
	char **grown;

	if ((grown = realloc(l->done, (l->ndone + 1) * sizeof(*grown))) ==
	    NULL)
		return -1;
	l->done = grown;
	if ((grown[l->ndone] = strndup(rule, len)) == NULL)
		return -1;
	l->ndone++;
	return 0;
}

/* Keeps the id: the array stays sorted for find_live. */
static void
mark_gone(struct journal *j, struct live *l)
{
	uint64_t id = l->id;

	j->live_bytes -= l->record_len;
	live_clear(l);
	l->id = id;
	l->gone = true;
	j->ngone++;
}

/* Drops gone entries from the array once they are many. */
static void
squeeze(struct journal *j)
{
	size_t kept = 0;

	for (size_t i = 0; i < j->nlive; i++)
		if (!j->live[i].gone)
			j->live[kept++] = j->live[i];
	j->nlive = kept;
	j->ngone = 0;
}

/* Applies one record read at open. */
static void
replay_record(struct journal *j, const char *body, size_t n)
{
	uint64_t id;
	struct live *l;
	uint16_t len;

	memcpy(&id, body + 1, 8);
	if (id > j->last_id)
		j->last_id = id;
	if (body[0] == R_ARRIVED) {
		char *copy = malloc(HEADER + n);

		if (copy == NULL)
			return;
		double time = 0;

		memcpy(copy, body - HEADER, HEADER + n);
		if (n >= 19)
			memcpy(&time, body + 11, 8);
		if (add_live(j, id, time, copy, HEADER + n) == -1)
			free(copy);
	} else if ((l = find_live(j, id)) == NULL) {
		return;
	} else if (body[0] == R_DONE) {
		mark_gone(j, l);
	} else if (body[0] == R_RULE_DONE && n >= 11) {
		memcpy(&len, body + 9, 2);
		if ((size_t)len + 11 <= n)
			add_done_rule(l, body + 11, len);
	}
}

/* Reads the records of buf; returns the length of the good prefix. */
static size_t
replay_all(struct journal *j, const char *buf, size_t n)
{
	size_t off = 0;
	uint32_t len, crc;

	while (n - off >= HEADER) {
		memcpy(&len, buf + off, 4);
		memcpy(&crc, buf + off + 4, 4);
		if (len < 9 || len > n - off - HEADER ||
		    crc32_of((const unsigned char *)buf + off + HEADER, len) !=
		    crc)
			break;
		replay_record(j, buf + off + HEADER, len);
		off += HEADER + len;
	}
	return off;
}

static int
read_file(const char *path, char **buf, size_t *n)
{
	struct stat st;
	int fd;
	ssize_t got = 0, r;

	*buf = NULL;
	*n = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == -1 || (*buf = malloc((size_t)st.st_size + 1)) ==
	    NULL) {
		close(fd);
		return -1;
	}
	while (got < st.st_size &&
	    (r = read(fd, *buf + got, (size_t)(st.st_size - got))) > 0)
		got += r;
	close(fd);
	*n = (size_t)got;
	return 0;
}

/* A rule-done record, or with rule NULL an event-done record. */
static char *
done_record(uint64_t id, const char *rule, size_t *len)
{
	char extra[2 + 256];
	size_t n;
	uint16_t n16;

	if (rule == NULL)
		return make_record(R_DONE, id, NULL, 0, len);
	n = strlen(rule);
	if (n > 256)
		n = 256;
	n16 = (uint16_t)n;
	memcpy(extra, &n16, 2);
	memcpy(extra + 2, rule, n);
	return make_record(R_RULE_DONE, id, extra, n + 2, len);
}

static int
write_live(struct journal *j, int fd)
{
	char *r;
	size_t len;
	int rc;

	for (size_t i = 0; i < j->nlive; i++) {
		struct live *l = &j->live[i];

		if (l->gone)
			continue;
		if (write_all(fd, l->record, l->record_len) == -1)
			return -1;
		for (size_t k = 0; k < l->ndone; k++) {
			if ((r = done_record(l->id, l->done[k], &len)) == NULL)
				return -1;
			rc = write_all(fd, r, len);
			free(r);
			if (rc == -1)
				return -1;
		}
	}
	return 0;
}

static void
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd != -1) {
		fsync(fd);
		close(fd);
	}
}

/* Writes the unfinished events to a new file and puts it in place of
 * the journal, so that a crash leaves either file whole. */
static int
rewrite(struct journal *j)
{
	int fd;
	struct stat st;

	if (flush_marks(j) == -1)
		return -1;
	squeeze(j);
	fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	if (write_all(fd, magic, MAGIC_LEN) == -1 || write_live(j, fd) == -1 ||
	    fdatasync(fd) == -1 ||
	    rename(j->tmp_path, j->path) == -1) {
		close(fd);
		unlink(j->tmp_path);
		return -1;
	}
	sync_dir(j->dir);
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->bytes = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
	j->dirty = false;
	return 0;
}

static int
take_over_file(struct journal *j, char *err, size_t size)
{
	char *buf;
	size_t n, good;

	if (read_file(j->path, &buf, &n) == -1) {
		snprintf(err, size, "%s: %s", j->path, strerror(errno));
		return -1;
	}
	if (n > 0 && (n < MAGIC_LEN || memcmp(buf, magic, MAGIC_LEN) != 0)) {
		snprintf(err, size, "%s: not a journal of this version; "
		    "left as it is", j->path);
		free(buf);
		return -1;
	}
	good = n > 0 ? MAGIC_LEN + replay_all(j, buf + MAGIC_LEN,
	    n - MAGIC_LEN) : 0;
	free(buf);
	if (good < n)
		log_warn("journal: %s: cut %zu bytes from offset %zu, a record "
		    "torn by a crash or damaged", j->path, n - good, good);
	if (rewrite(j) == -1) {
		snprintf(err, size, "%s: cannot rewrite: %s", j->path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
collect_pending(struct journal *j)
{
	struct journal_pending *p;

	if (j->nlive == 0 || (p = calloc(j->nlive, sizeof(*p))) == NULL)
		return;
	for (size_t i = 0; i < j->nlive; i++) {
		struct live *l = &j->live[i];
		struct journal_pending *e = &p[j->npending];

		if (l->gone || (e->m = parse_arrival(l->record + HEADER + 9,
		    l->record_len - HEADER - 9)) == NULL)
			continue;
		e->m->id = l->id;
		e->done = l->done;
		e->ndone = l->ndone;
		l->done = NULL;
		l->ndone = 0;
		j->npending++;
	}
	j->pending = p;
}

struct journal *
journal_open(const char *dir, enum journal_sync sync, char *err,
    size_t size)
{
	struct journal *j;

	crc_init();
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, size, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	pthread_mutex_init(&j->lock, NULL);
	j->fd = -1;
	j->sync = sync;
	j->dir = strdup(dir);
	j->path = path_join(dir, "journal");
	j->tmp_path = path_join(dir, "journal.tmp");
	if (j->dir == NULL || j->path == NULL || j->tmp_path == NULL) {
		snprintf(err, size, "out of memory");
		journal_close(j);
		return NULL;
	}
	if (take_over_file(j, err, size) == -1) {
		journal_close(j);
		return NULL;
	}
	collect_pending(j);
	return j;
}

void
journal_pending_free(struct journal_pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		message_free(p[i].m);
		for (size_t k = 0; k < p[i].ndone; k++)
			free(p[i].done[k]);
		free(p[i].done);
	}
	free(p);
}

struct journal_pending *
journal_take_pending(struct journal *j, size_t *n)
{
	struct journal_pending *p = j->pending;

	*n = j->npending;
	j->pending = NULL;
	j->npending = 0;
	return p;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->fd != -1) {
		flush_marks(j);
		if (j->dirty)
			fdatasync(j->fd);
		close(j->fd);
	}
	free(j->marks);
	for (size_t i = 0; i < j->nlive; i++)
		live_clear(&j->live[i]);
	free(j->live);
	journal_pending_free(j->pending, j->npending);
	pthread_mutex_destroy(&j->lock);
	free(j->dir);
	free(j->path);
	free(j->tmp_path);
	free(j);
}

int
journal_arrived(struct journal *j, struct message *m)
{
	char *r;
	size_t len;
	int rc = -1;

	pthread_mutex_lock(&j->lock);
	m->id = ++j->last_id;
	if ((r = arrival_record(m, m->id, &len)) == NULL)
		goto out;
	if (append(j, r, len) == -1 ||
	    (j->sync == JOURNAL_SYNC_ALWAYS && fdatasync(j->fd) == -1) ||
	    add_live(j, m->id, m->time, r, len) == -1) {
		free(r);
		goto out;
	}
	if (j->sync == JOURNAL_SYNC_ALWAYS)
		j->dirty = false;
	rc = 0;
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int
journal_done(struct journal *j, uint64_t id, const char *rule)
{
	struct live *l;
	char *r;
	size_t len;
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	if ((l = find_live(j, id)) == NULL)
		goto out;
	r = done_record(id, rule, &len);
	rc = r == NULL ? -1 : hold_mark(j, r, len);
	free(r);
	if (rule == NULL)
		mark_gone(j, l);
	else
		add_done_rule(l, rule, strlen(rule));
out:
	pthread_mutex_unlock(&j->lock);
	return rc;
}

void
journal_tick(struct journal *j, double now)
{
	pthread_mutex_lock(&j->lock);
	if (flush_marks(j) == -1)
		log_error("journal: %s: %s", j->path, strerror(errno));
	if (j->dirty && j->sync == JOURNAL_SYNC_PERIODIC &&
	    now - j->last_sync >= 1) {
		fdatasync(j->fd);
		j->dirty = false;
		j->last_sync = now;
	}
	if (j->ngone > 1024 && j->ngone * 2 > j->nlive)
		squeeze(j);
	if (j->bytes > COMPACT_MIN && j->bytes > 4 * j->live_bytes &&
	    rewrite(j) == -1)
		log_error("journal: %s: rewrite failed: %s", j->path,
		    strerror(errno));
	pthread_mutex_unlock(&j->lock);
}

void
journal_rest(struct journal *j)
{
	pthread_mutex_lock(&j->lock);
	if (flush_marks(j) == -1)
		log_error("journal: %s: %s", j->path, strerror(errno));
	free(j->marks);
	j->marks = NULL;
	j->marks_cap = 0;
	squeeze(j);
	if (j->nlive == 0) {
		free(j->live);
		j->live = NULL;
		j->cap = 0;
	}
	pthread_mutex_unlock(&j->lock);
}

size_t
journal_bytes(struct journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->lock);
	n = j->bytes;
	pthread_mutex_unlock(&j->lock);
	return n;
}

double
journal_oldest(struct journal *j)
{
	double t = 0;

	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->nlive && t == 0; i++)
		if (!j->live[i].gone)
			t = j->live[i].time;
	pthread_mutex_unlock(&j->lock);
	return t;
}
