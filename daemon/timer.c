/* Deadlines on the daemon's clock, run by the main loop: a binary heap
 * ordered by deadline, then by id so equal deadlines fire in the order
 * they were set. */
#include <stdlib.h>

#include "timer.h"

struct timer_entry {
	double		 when;
	uint64_t	 id;
	timer_fn	*fire;
	void		*ctx;
	const void	*owner;
};

static struct timer_entry	*heap;
static size_t			 heap_len, heap_cap;
static uint64_t			 last_id;

static int
earlier(const struct timer_entry *a, const struct timer_entry *b)
{
	if (a->when != b->when)
		return a->when < b->when;
	return a->id < b->id;
}

static void
swap(size_t i, size_t j)
{
	struct timer_entry t = heap[i];

	heap[i] = heap[j];
	heap[j] = t;
}

static void
sift_up(size_t i)
{
	while (i > 0 && earlier(&heap[i], &heap[(i - 1) / 2])) {
		swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
sift_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < heap_len && earlier(&heap[l], &heap[m]))
			m = l;
		if (r < heap_len && earlier(&heap[r], &heap[m]))
			m = r;
		if (m == i)
			return;
		swap(i, m);
		i = m;
	}
}

static struct timer_entry
remove_at(size_t i)
{
	struct timer_entry e = heap[i];

	heap[i] = heap[--heap_len];
	if (i < heap_len) {
		sift_down(i);
		sift_up(i);
	}
	return e;
}

uint64_t
timer_add(double when, timer_fn *fire, void *ctx, const void *owner)
{
	struct timer_entry *grown;

	if (heap_len == heap_cap) {
		size_t cap = heap_cap == 0 ? 16 : heap_cap * 2;

		if ((grown = realloc(heap, cap * sizeof(*heap))) == NULL)
			return 0;
		heap = grown;
		heap_cap = cap;
	}
	heap[heap_len] = (struct timer_entry){ when, ++last_id, fire, ctx,
	    owner };
	sift_up(heap_len++);
	return last_id;
}

void *
timer_cancel(uint64_t id)
{
	for (size_t i = 0; i < heap_len; i++)
		if (heap[i].id == id)
			return remove_at(i).ctx;
	return NULL;
}

double
timer_next(void)
{
	return heap_len > 0 ? heap[0].when : -1;
}

int
timer_run_due(double now)
{
	struct timer_entry e;
	int fired = 0;

	while (heap_len > 0 && heap[0].when <= now) {
		e = remove_at(0);
		e.fire(e.ctx);
		fired++;
	}
	return fired;
}

/* Drops the owner's entries and rebuilds the heap from what is left. */
void
timer_cancel_owner(const void *owner)
{
	size_t kept = 0;

	for (size_t i = 0; i < heap_len; i++)
		if (heap[i].owner != owner)
			heap[kept++] = heap[i];
	heap_len = kept;
	for (size_t i = heap_len / 2; i-- > 0;)
		sift_down(i);
}

size_t
timer_pending(void)
{
	return heap_len;
}
