/* Named counters with optional sliding windows, shared by all rules. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "path.h"

#define SLOTS_MIN	16
/* Far beyond any clock reading, near enough to zero that second
 * arithmetic cannot overflow. */
#define SECOND_LIMIT	1e15

/* What was added to a key during one whole second. */
struct bucket {
	int64_t	second;
	int64_t	count;
};

/*
 * A key. Buckets are kept oldest first, and only while the key's largest
 * window still counts them, except the newest one: it tells when the key
 * was last incremented, which expiry needs.
 */
struct entry {
	int64_t		 total;		/* since the key was created */
	struct bucket	*buckets;
	uint32_t	 nbuckets;
	uint32_t	 bucketcap;
	uint32_t	 window;	/* largest incremented with, or 0 */
	uint32_t	 hash;
	char		 key[];
};

/* Open addressing with linear probing; deletions shift later entries of
 * the cluster back, so there are no tombstones to clean up. */
struct counter_store {
	struct entry	**slots;
	size_t		  nslots;	/* a power of two */
	size_t		  count;
	int64_t		  sweep_at;	/* no key expires before this second */
	bool		  dirty;	/* changed since the last save */
};

struct sweep {
	int64_t	second;
	int64_t	next;		/* earliest expiry among the kept keys */
};

static int64_t
second_of(double now)
{
	if (isnan(now))
		return 0;
	if (now > SECOND_LIMIT)
		now = SECOND_LIMIT;
	if (now < -SECOND_LIMIT)
		now = -SECOND_LIMIT;
	return (int64_t)floor(now);
}

/* Counts saturate rather than wrap: a rule comparing a count with a
 * threshold keeps working. */
static int64_t
add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

/* FNV-1a. */
static uint32_t
key_hash(const char *key)
{
	const unsigned char	*p;
	uint32_t		 h = 2166136261u;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

static struct entry *
entry_new(const char *key, uint32_t hash)
{
	struct entry	*e;
	size_t		 len = strlen(key);

	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	e->hash = hash;
	return e;
}

static void
entry_free(struct entry *e)
{
	free(e->buckets);
	free(e);
}

/* Adds n to the bucket of second sec, inserting it in order; searches
 * from the newest since the clock seldom goes back. */
static int
entry_add(struct entry *e, int64_t sec, int64_t n)
{
	struct bucket	*b;
	uint32_t	 i, cap;

	for (i = e->nbuckets; i > 0 && e->buckets[i - 1].second > sec; i--)
		continue;
	if (i > 0 && e->buckets[i - 1].second == sec) {
		e->buckets[i - 1].count = add_sat(e->buckets[i - 1].count, n);
		return 0;
	}
	if (e->nbuckets == e->bucketcap) {
		/* Most keys see a few increments: grow slowly at first. */
		cap = e->bucketcap < 4 ? e->bucketcap + 1 :
		    e->bucketcap + e->bucketcap / 2;
		if ((b = realloc(e->buckets, cap * sizeof(*b))) == NULL)
			return -1;
		e->buckets = b;
		e->bucketcap = cap;
	}
	b = &e->buckets[i];
	memmove(b + 1, b, (e->nbuckets - i) * sizeof(*b));
	b->second = sec;
	b->count = n;
	e->nbuckets++;
	return 0;
}

/* Drops the buckets no window of the key counts any more, keeping the
 * newest; gives memory back once most of it is unused. */
static void
entry_prune(struct entry *e, int64_t sec)
{
	struct bucket	*b;
	uint32_t	 k = 0, cap;

	while (k + 1 < e->nbuckets && sec - e->buckets[k].second >= e->window)
		k++;
	if (k > 0) {
		e->nbuckets -= k;
		memmove(e->buckets, e->buckets + k,
		    e->nbuckets * sizeof(*e->buckets));
	}
	if (e->bucketcap > 8 && e->nbuckets < e->bucketcap / 4) {
		cap = e->bucketcap / 2;
		if ((b = realloc(e->buckets, cap * sizeof(*b))) != NULL) {
			e->buckets = b;
			e->bucketcap = cap;
		}
	}
}

/*
 * Buckets are only kept for the largest window the key was incremented
 * with, so a larger window counts as that one, and a key only ever
 * incremented without a window counts 0 in any window.
 */
static int64_t
entry_count(const struct entry *e, int64_t window, int64_t sec)
{
	int64_t		 sum = 0;
	uint32_t	 i;

	if (window <= 0)
		return e->total;
	if (window > e->window)
		window = e->window;
	for (i = e->nbuckets; i > 0; i--) {
		if (sec - e->buckets[i - 1].second >= window)
			break;
		sum = add_sat(sum, e->buckets[i - 1].count);
	}
	return sum;
}

/* The first second at which the key is idle longer than its window. */
static int64_t
entry_expiry(const struct entry *e)
{
	if (e->window == 0 || e->nbuckets == 0)
		return INT64_MAX;
	return e->buckets[e->nbuckets - 1].second + e->window + 1;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
slot_find(const struct counter_store *cs, const char *key, uint32_t hash)
{
	struct entry	*e;
	size_t		 mask = cs->nslots - 1, i;

	for (i = hash & mask; (e = cs->slots[i]) != NULL; i = (i + 1) & mask)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			break;
	return i;
}

static struct entry *
store_lookup(const struct counter_store *cs, const char *key)
{
	return cs->slots[slot_find(cs, key, key_hash(key))];
}

static int
store_resize(struct counter_store *cs, size_t nslots)
{
	struct entry	**old = cs->slots, *e;
	size_t		  oldn = cs->nslots, i, j;

	if ((cs->slots = calloc(nslots, sizeof(*cs->slots))) == NULL) {
		cs->slots = old;
		return -1;
	}
	cs->nslots = nslots;
	for (i = 0; i < oldn; i++) {
		if ((e = old[i]) == NULL)
			continue;
		for (j = e->hash & (nslots - 1); cs->slots[j] != NULL;
		    j = (j + 1) & (nslots - 1))
			continue;
		cs->slots[j] = e;
	}
	free(old);
	return 0;
}

/* A table that emptied out is halved toward a load between a quarter and
 * a half; failing to shrink only costs memory. */
static void
store_shrink(struct counter_store *cs)
{
	size_t	nslots = cs->nslots;

	if (cs->count * 8 >= nslots)
		return;
	while (nslots > SLOTS_MIN && cs->count * 4 < nslots)
		nslots /= 2;
	if (nslots != cs->nslots)
		(void)store_resize(cs, nslots);
}

static void
store_empty(struct counter_store *cs)
{
	size_t	i;

	for (i = 0; i < cs->nslots; i++) {
		if (cs->slots[i] != NULL)
			entry_free(cs->slots[i]);
		cs->slots[i] = NULL;
	}
	cs->count = 0;
	cs->sweep_at = INT64_MAX;
}

/* The entry of key, added when missing; NULL on allocation failure. */
static struct entry *
store_add(struct counter_store *cs, const char *key, uint32_t hash,
    bool *added)
{
	struct entry	*e;
	size_t		 i;

	*added = false;
	i = slot_find(cs, key, hash);
	if (cs->slots[i] != NULL)
		return cs->slots[i];
	if ((cs->count + 1) * 4 > cs->nslots * 3) {
		if (store_resize(cs, cs->nslots * 2) == -1)
			return NULL;
		i = slot_find(cs, key, hash);
	}
	if ((e = entry_new(key, hash)) == NULL)
		return NULL;
	cs->slots[i] = e;
	cs->count++;
	*added = true;
	return e;
}

/* Frees the entry in slot i and moves each later entry of its cluster
 * into the hole when the hole lies between its home slot and it. */
static void
slot_delete(struct counter_store *cs, size_t i)
{
	struct entry	*e;
	size_t		 mask = cs->nslots - 1, j, home;

	entry_free(cs->slots[i]);
	cs->slots[i] = NULL;
	cs->count--;
	for (j = (i + 1) & mask; (e = cs->slots[j]) != NULL;
	    j = (j + 1) & mask) {
		home = e->hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			cs->slots[i] = e;
			cs->slots[j] = NULL;
			i = j;
		}
	}
}

/* Deleting may pull a later entry into slot i, so i is looked at again;
 * an entry pulled around the end of the table was already looked at. */
static void
store_remove_if(struct counter_store *cs,
    bool (*doomed)(const struct entry *, void *), void *arg)
{
	size_t	i = 0;

	while (i < cs->nslots) {
		if (cs->slots[i] != NULL && doomed(cs->slots[i], arg))
			slot_delete(cs, i);
		else
			i++;
	}
	store_shrink(cs);
}

struct counter_store *
counter_store_new(void)
{
	struct counter_store	*cs;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	if ((cs->slots = calloc(SLOTS_MIN, sizeof(*cs->slots))) == NULL) {
		free(cs);
		return NULL;
	}
	cs->nslots = SLOTS_MIN;
	cs->sweep_at = INT64_MAX;
	return cs;
}

void
counter_store_free(struct counter_store *cs)
{
	if (cs == NULL)
		return;
	store_empty(cs);
	free(cs->slots);
	free(cs);
}

/* Buckets hold whole seconds as they would be counted; windows beyond
 * 2^32 s (136 years) are taken as that. */
static uint32_t
window_clamp(int64_t window)
{
	if (window <= 0)
		return 0;
	if (window > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)window;
}

/* A failed increment leaves the store as it was. */
int64_t
counter_incr(struct counter_store *cs, const char *key, int64_t n,
    int64_t window, double now)
{
	struct entry	*e;
	int64_t		 sec = second_of(now), expiry;
	uint32_t	 hash = key_hash(key), w;
	bool		 added;

	if ((e = store_add(cs, key, hash, &added)) == NULL)
		return -1;
	w = window_clamp(window);
	if (w < e->window)
		w = e->window;
	if (w > 0) {
		if (entry_add(e, sec, n) == -1) {
			if (added)
				slot_delete(cs, slot_find(cs, key, hash));
			return -1;
		}
		e->window = w;
		entry_prune(e, sec);
		if ((expiry = entry_expiry(e)) < cs->sweep_at)
			cs->sweep_at = expiry;
	}
	e->total = add_sat(e->total, n);
	cs->dirty = true;
	return entry_count(e, window, sec);
}

int64_t
counter_get(struct counter_store *cs, const char *key, int64_t window,
    double now)
{
	struct entry	*e;
	int64_t		 sec = second_of(now);

	if ((e = store_lookup(cs, key)) == NULL)
		return 0;
	if (e->window > 0)
		entry_prune(e, sec);
	return entry_count(e, window, sec);
}

void
counter_reset(struct counter_store *cs, const char *key)
{
	size_t	i;

	i = slot_find(cs, key, key_hash(key));
	if (cs->slots[i] != NULL)
		slot_delete(cs, i);
	cs->dirty = true;
}

static bool
has_prefix(const struct entry *e, void *prefix)
{
	return strncmp(e->key, prefix, strlen(prefix)) == 0;
}

void
counter_clear(struct counter_store *cs, const char *prefix)
{
	cs->dirty = true;
	if (prefix != NULL && *prefix != '\0') {
		store_remove_if(cs, has_prefix, (void *)prefix);
		return;
	}
	store_empty(cs);
	store_shrink(cs);
}

static bool
is_idle(const struct entry *e, void *arg)
{
	struct sweep	*s = arg;
	int64_t		 expiry = entry_expiry(e);

	if (expiry <= s->second)
		return true;
	if (expiry < s->next)
		s->next = expiry;
	return false;
}

/*
 * Sweeps the whole table, but only once the earliest expiry noted since
 * the last sweep has come: at most once per second, and not at all
 * while no key can have expired.
 */
void
counter_expire(struct counter_store *cs, double now)
{
	struct sweep	s;

	s.second = second_of(now);
	s.next = INT64_MAX;
	if (s.second < cs->sweep_at)
		return;
	store_remove_if(cs, is_idle, &s);
	cs->sweep_at = s.next;
}

size_t
counter_live_keys(const struct counter_store *cs)
{
	return cs->count;
}

/* Saved state: "mqttrules-counters 1\n", then per key
 * [u32 key length][key][i64 total][u32 window][u32 buckets]
 * [buckets: i64 second, i64 count]. */
static const char	save_magic[] = "mqttrules-counters 1\n";

static int
save_entry(FILE *f, const struct entry *e)
{
	uint32_t len = (uint32_t)strlen(e->key);

	return fwrite(&len, 4, 1, f) == 1 &&
	    fwrite(e->key, 1, len, f) == len &&
	    fwrite(&e->total, 8, 1, f) == 1 &&
	    fwrite(&e->window, 4, 1, f) == 1 &&
	    fwrite(&e->nbuckets, 4, 1, f) == 1 &&
	    (e->nbuckets == 0 || fwrite(e->buckets, sizeof(*e->buckets),
	    e->nbuckets, f) == e->nbuckets) ? 0 : -1;
}

int
counter_save(struct counter_store *cs, const char *path)
{
	char tmp[4096];
	FILE *f;
	int rc = 0;

	if ((f = path_replace_open(path, tmp, sizeof(tmp))) == NULL)
		return -1;
	fputs(save_magic, f);
	for (size_t i = 0; i < cs->nslots && rc == 0; i++)
		if (cs->slots[i] != NULL)
			rc = save_entry(f, cs->slots[i]);
	if (path_replace_commit(f, tmp, path, rc == -1) == -1)
		return -1;
	cs->dirty = false;
	return 0;
}

static int
load_entry(struct counter_store *cs, FILE *f)
{
	struct entry *e;
	uint32_t len, window, n;
	int64_t total;
	char key[65536];
	bool added;

	if (fread(&len, 4, 1, f) != 1)
		return 1;	/* the end */
	if (len >= sizeof(key) || fread(key, 1, len, f) != len ||
	    fread(&total, 8, 1, f) != 1 || fread(&window, 4, 1, f) != 1 ||
	    fread(&n, 4, 1, f) != 1)
		return -1;
	key[len] = '\0';
	if ((e = store_add(cs, key, key_hash(key), &added)) == NULL)
		return -1;
	e->total = total;
	e->window = window;
	for (uint32_t i = 0; i < n; i++) {
		struct bucket b;

		if (fread(&b, sizeof(b), 1, f) != 1 ||
		    entry_add(e, b.second, b.count) == -1)
			return -1;
	}
	return 0;
}

int
counter_load(struct counter_store *cs, const char *path)
{
	char magic[sizeof(save_magic)];
	FILE *f;
	int rc;

	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	if (fread(magic, 1, sizeof(magic) - 1, f) != sizeof(magic) - 1 ||
	    memcmp(magic, save_magic, sizeof(magic) - 1) != 0) {
		fclose(f);
		return -1;
	}
	while ((rc = load_entry(cs, f)) == 0)
		continue;
	fclose(f);
	cs->sweep_at = INT64_MIN;	/* let the next sweep look at all */
	return rc == 1 ? 0 : -1;
}

bool
counter_dirty(const struct counter_store *cs)
{
	return cs->dirty;
}
