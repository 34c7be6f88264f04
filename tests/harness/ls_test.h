/*
 * A tiny unit-test runner producing TAP (meson `protocol : 'tap'`).
 *
 *   LS_TEST(name) { LS_CHECK(1 + 1 == 2); LS_CHECK_STR("a", "a"); }
 *   LS_TEST_MAIN()
 *
 * Each test is a function registered by a constructor; LS_TEST_MAIN runs
 * them all in order of definition and prints one TAP line per test. A
 * failing check prints where and why and fails its test; the others go on.
 * LS_SKIP("why") skips the current test (TAP "# SKIP"); a test whose
 * checks already failed is reported "not ok" even when it then skips.
 * More tests than LS_TEST_MAX in one program is an error ("Bail out!").
 * The environment variable LS_TEST_FILTER runs only tests whose name
 * contains it.
 */
#ifndef LS_TEST_H
#define LS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*ls_test_fn)(void);

#ifndef LS_TEST_MAX
#define LS_TEST_MAX 1024 /* a program may set its own first */
#endif

struct ls_test_state {
	const char *names[LS_TEST_MAX];
	ls_test_fn fns[LS_TEST_MAX];
	int count;
	int dropped; /* registrations beyond LS_TEST_MAX */
	int failed;  /* checks failed in the current test */
	const char *skipped;
};

static struct ls_test_state ls_test_state__;

static inline void
ls_test_register__(const char *name, ls_test_fn fn)
{
	if (ls_test_state__.count < LS_TEST_MAX) {
		ls_test_state__.names[ls_test_state__.count] = name;
		ls_test_state__.fns[ls_test_state__.count++] = fn;
	} else {
		ls_test_state__.dropped++;
	}
}

#define LS_TEST(name)                                                         \
	static void ls_test_##name(void);                                     \
	__attribute__((constructor)) static void ls_test_reg_##name(void)     \
	{                                                                     \
		ls_test_register__(#name, ls_test_##name);                    \
	}                                                                     \
	static void ls_test_##name(void)

#define LS_CHECK(cond)                                                        \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("# %s:%d: check failed: %s\n", __FILE__,       \
			       __LINE__, #cond);                              \
			ls_test_state__.failed++;                             \
		}                                                             \
	} while (0)

#define LS_CHECK_INT(a, b)                                                    \
	do {                                                                  \
		long long ls_a__ = (long long)(a), ls_b__ = (long long)(b);   \
		if (ls_a__ != ls_b__) {                                       \
			printf("# %s:%d: %s == %s: %lld != %lld\n", __FILE__, \
			       __LINE__, #a, #b, ls_a__, ls_b__);             \
			ls_test_state__.failed++;                             \
		}                                                             \
	} while (0)

#define LS_CHECK_STR(a, b)                                                    \
	do {                                                                  \
		const char *ls_a__ = (a), *ls_b__ = (b);                      \
		if (ls_a__ == NULL || ls_b__ == NULL ||                       \
		    strcmp(ls_a__, ls_b__) != 0) {                            \
			printf("# %s:%d: %s == %s: \"%s\" != \"%s\"\n",       \
			       __FILE__, __LINE__, #a, #b,                    \
			       ls_a__ ? ls_a__ : "(null)",                    \
			       ls_b__ ? ls_b__ : "(null)");                   \
			ls_test_state__.failed++;                             \
		}                                                             \
	} while (0)

/* Stop the current test as failed (use inside the test function). */
#define LS_FAIL(msg)                                                          \
	do {                                                                  \
		printf("# %s:%d: %s\n", __FILE__, __LINE__, msg);             \
		ls_test_state__.failed++;                                     \
		return;                                                       \
	} while (0)

#define LS_SKIP(why)                                                          \
	do {                                                                  \
		ls_test_state__.skipped = (why);                              \
		return;                                                       \
	} while (0)

static inline int
ls_test_run_all__(void)
{
	const char *filter = getenv("LS_TEST_FILTER");
	int total_failed = 0, n = 0;

	if (ls_test_state__.dropped > 0) {
		/* Never run a silently shortened list. */
		printf("Bail out! %d tests beyond LS_TEST_MAX (%d): raise "
		       "it\n",
		       ls_test_state__.dropped, LS_TEST_MAX);
		fflush(stdout);
		return 1;
	}

	for (int i = 0; i < ls_test_state__.count; i++) {
		if (filter && !strstr(ls_test_state__.names[i], filter)) {
			continue;
		}
		n++;
	}
	printf("1..%d\n", n);
	n = 0;
	for (int i = 0; i < ls_test_state__.count; i++) {
		if (filter && !strstr(ls_test_state__.names[i], filter)) {
			continue;
		}
		ls_test_state__.failed = 0;
		ls_test_state__.skipped = NULL;
		fflush(stdout);
		ls_test_state__.fns[i]();
		n++;
		if (ls_test_state__.failed) {
			/* Checks that failed before a skip still fail. */
			printf("not ok %d - %s\n", n,
			       ls_test_state__.names[i]);
			if (ls_test_state__.skipped) {
				printf("# then skipped: %s\n",
				       ls_test_state__.skipped);
			}
			total_failed++;
		} else if (ls_test_state__.skipped) {
			printf("ok %d - %s # SKIP %s\n", n,
			       ls_test_state__.names[i],
			       ls_test_state__.skipped);
		} else {
			printf("ok %d - %s\n", n, ls_test_state__.names[i]);
		}
		fflush(stdout);
	}
	return total_failed ? 1 : 0;
}

#define LS_TEST_MAIN()                                                        \
	int main(void)                                                        \
	{                                                                     \
		return ls_test_run_all__();                                   \
	}

#endif
