/* Unit tests of redelivery.c: telling a broker's resend of a taken
 * message from a new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "redelivery.h"

static struct redelivery *
fresh(void)
{
	struct redelivery *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	return r;
}

static void
test_a_resend_on_the_next_connection_is_recognised(void **state)
{
	struct redelivery *r = fresh();

	(void)state;
	redelivery_taken(r, 11, 1, "kompose/a", "{\"n\":1}", 7);
	assert_true(redelivery_seen(r, 11, 2, "kompose/a", "{\"n\":1}", 7));
	/* Later than that, the identifier may be a new message's (a broker
	 * restarted in between): not a resend. */
	assert_false(redelivery_seen(r, 11, 3, "kompose/a", "{\"n\":1}", 7));
	/* A resend recorded again is recognised on the connection after. */
	redelivery_taken(r, 11, 2, "kompose/a", "{\"n\":1}", 7);
	assert_true(redelivery_seen(r, 11, 3, "kompose/a", "{\"n\":1}", 7));
	free(r);
}

static void
test_anything_else_is_a_new_message(void **state)
{
	struct redelivery *r = fresh();

	(void)state;
	redelivery_taken(r, 11, 1, "kompose/a", "{\"n\":1}", 7);
	/* The same connection: the broker resends only after a reconnect. */
	assert_false(redelivery_seen(r, 11, 1, "kompose/a", "{\"n\":1}", 7));
	/* Another identifier, topic or payload. */
	assert_false(redelivery_seen(r, 12, 2, "kompose/a", "{\"n\":1}", 7));
	assert_false(redelivery_seen(r, 11, 2, "kompose/b", "{\"n\":1}", 7));
	assert_false(redelivery_seen(r, 11, 2, "kompose/a", "{\"n\":2}", 7));
	assert_false(redelivery_seen(r, 11, 2, "kompose/a", "{\"n\":1}", 6));
	/* Topic and payload are parted: "ab" + "c" is not "a" + "bc". */
	redelivery_taken(r, 20, 1, "ab", "c", 1);
	assert_false(redelivery_seen(r, 20, 2, "a", "bc", 2));
	/* Identifier 0 (QoS 0) is never a resend. */
	redelivery_taken(r, 0, 1, "t", "x", 1);
	assert_false(redelivery_seen(r, 0, 2, "t", "x", 1));
	free(r);
}

static void
test_resends_do_not_push_each_other_out(void **state)
{
	struct redelivery *r = fresh();
	int n = REDELIVERY_SLOTS + 100, recognised = 0;

	(void)state;
	/* More messages unacknowledged than there are slots: the later ones
	 * take the slots of the first 100, which then go unrecognised
	 * (handled twice, the safe side); every other resend still is. */
	for (int id = 1; id <= n; id++)
		redelivery_taken(r, id, 1, "t", "same", 4);
	for (int id = 1; id <= n; id++) {
		if (redelivery_seen(r, id, 2, "t", "same", 4))
			recognised++;
		redelivery_taken(r, id, 2, "t", "same", 4);
	}
	assert_int_equal(recognised, n - 200);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_resend_on_the_next_connection_is_recognised),
		cmocka_unit_test(test_anything_else_is_a_new_message),
		cmocka_unit_test(test_resends_do_not_push_each_other_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
