/* Unit tests of the journal: what survives a reopen, torn records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "queue.h"

static char dir[64];

static int
make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/journal-test-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct journal *
open_journal(void)
{
	char err[256];
	struct journal *j = journal_open(dir, JOURNAL_SYNC_ALWAYS, err,
	    sizeof(err));

	assert_non_null(j);
	return j;
}

static uint64_t
arrive(struct journal *j, const char *topic, const char *payload)
{
	struct message *m = message_new(topic, payload, strlen(payload), 1,
	    false, 1700000000.5);
	uint64_t id;

	assert_int_equal(journal_arrived(j, m), 0);
	id = m->id;
	message_free(m);
	return id;
}

static void
test_unfinished_events_come_back_with_their_done_rules(void **state)
{
	struct journal *j = open_journal();
	struct journal_pending *p;
	uint64_t a, b, c, ids[20];
	size_t n;

	(void)state;
	p = journal_take_pending(j, &n);
	assert_int_equal(n, 0);
	journal_pending_free(p, n);
	a = arrive(j, "t/a", "{\"n\":1}");
	b = arrive(j, "t/b", "two");
	c = arrive(j, "t/c", "");
	assert_true(a < b && b < c);
	assert_int_equal(journal_done(j, a, "rule-x"), 0);
	assert_int_equal(journal_done(j, a, NULL), 0);
	assert_int_equal(journal_done(j, b, "rule-x"), 0);
	/* Events finish out of order; each must still be found. */
	for (int i = 0; i < 20; i++)
		ids[i] = arrive(j, "t/many", "m");
	for (int i = 19; i >= 0; i -= 2)
		assert_int_equal(journal_done(j, ids[i], NULL), 0);
	for (int i = 0; i < 20; i += 2)
		assert_int_equal(journal_done(j, ids[i], NULL), 0);
	journal_close(j);

	j = open_journal();
	p = journal_take_pending(j, &n);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].m->topic, "t/b");
	assert_int_equal(p[0].m->payload_len, 3);
	assert_memory_equal(p[0].m->payload, "two", 3);
	assert_int_equal(p[0].m->id, b);
	assert_int_equal(p[0].m->qos, 1);
	assert_true(p[0].m->time == 1700000000.5);
	assert_int_equal(p[0].ndone, 1);
	assert_string_equal(p[0].done[0], "rule-x");
	assert_string_equal(p[1].m->topic, "t/c");
	assert_int_equal(p[1].m->payload_len, 0);
	assert_int_equal(p[1].ndone, 0);
	journal_pending_free(p, n);

	/* New ids continue after the old ones. */
	assert_true(arrive(j, "t/d", "x") > c);
	journal_close(j);
}

static void
test_a_torn_last_record_is_cut(void **state)
{
	char path[128];
	struct journal *j;
	struct journal_pending *p;
	FILE *f;
	size_t n;

	(void)state;
	j = open_journal();
	p = journal_take_pending(j, &n);
	journal_pending_free(p, n);
	arrive(j, "t/e", "kept");
	journal_close(j);

	snprintf(path, sizeof(path), "%s/journal", dir);
	f = fopen(path, "ab");
	assert_non_null(f);
	fwrite("\x40\0\0\0garbage", 1, 11, f);	/* claims 64 bytes */
	fclose(f);

	j = open_journal();
	p = journal_take_pending(j, &n);
	/* The previous test left t/b, t/c and t/d unfinished. */
	assert_int_equal(n, 4);
	assert_string_equal(p[3].m->topic, "t/e");
	journal_pending_free(p, n);
	journal_close(j);
}

static void
test_finished_events_are_rewritten_away(void **state)
{
	struct journal *j;
	struct journal_pending *p;
	struct stat st;
	char path[128], big[4096];
	size_t n, before;

	(void)state;
	j = open_journal();
	p = journal_take_pending(j, &n);
	for (size_t i = 0; i < n; i++)
		journal_done(j, p[i].m->id, NULL);
	journal_pending_free(p, n);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 600; i++)
		journal_done(j, arrive(j, "t/big", big), NULL);
	arrive(j, "t/last", "live");
	before = journal_bytes(j);
	assert_true(before > 2 * 1024 * 1024);
	journal_tick(j, 1);
	assert_true(journal_bytes(j) < 200);
	journal_close(j);

	snprintf(path, sizeof(path), "%s/journal", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 200);
	j = open_journal();
	p = journal_take_pending(j, &n);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].m->topic, "t/last");
	journal_pending_free(p, n);
	journal_close(j);
}

static void
test_another_version_is_refused_and_kept(void **state)
{
	char path[128], err[256], back[64];
	FILE *f;
	size_t got;

	(void)state;
	snprintf(path, sizeof(path), "%s/journal", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fputs("mqttrules-journal 9\nnewer records", f);
	fclose(f);
	assert_null(journal_open(dir, JOURNAL_SYNC_ALWAYS, err, sizeof(err)));
	assert_non_null(strstr(err, "not a journal of this version"));
	f = fopen(path, "rb");
	got = fread(back, 1, sizeof(back) - 1, f);
	fclose(f);
	back[got] = '\0';
	assert_string_equal(back, "mqttrules-journal 9\nnewer records");
	unlink(path);
}

/* Unfinished events in what a kill -9 would leave: the file as it is
 * now, copied and opened elsewhere. */
static size_t
pending_in_copy(void)
{
	char cmd[512], copy[80], err[256];
	struct journal *j;
	struct journal_pending *p;
	size_t n;

	snprintf(copy, sizeof(copy), "%s/copy", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir %s && cp %s/journal %s/",
	    copy, copy, dir, copy);
	assert_int_equal(system(cmd), 0);
	j = journal_open(copy, JOURNAL_SYNC_ALWAYS, err, sizeof(err));
	assert_non_null(j);
	p = journal_take_pending(j, &n);
	journal_pending_free(p, n);
	journal_close(j);
	return n;
}

static void
test_arrivals_are_on_file_at_once_done_marks_at_the_tick(void **state)
{
	struct journal *j = open_journal();
	struct journal_pending *p;
	size_t n;
	uint64_t a;

	(void)state;
	p = journal_take_pending(j, &n);
	journal_pending_free(p, n);
	a = arrive(j, "t/f", "x");
	assert_int_equal(pending_in_copy(), 1);
	assert_int_equal(journal_done(j, a, NULL), 0);
	assert_int_equal(pending_in_copy(), 1);
	journal_tick(j, 2);
	assert_int_equal(pending_in_copy(), 0);
	journal_close(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_unfinished_events_come_back_with_their_done_rules),
		cmocka_unit_test(test_a_torn_last_record_is_cut),
		cmocka_unit_test(test_finished_events_are_rewritten_away),
		cmocka_unit_test(test_another_version_is_refused_and_kept),
		cmocka_unit_test(
		    test_arrivals_are_on_file_at_once_done_marks_at_the_tick),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
