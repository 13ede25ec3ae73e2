/* check.h - the counting assertions of the C test programs (tests/c/). Each
 * program ends with "<name>: N passed, N failed" and exits non-zero on a
 * failure, so `make ctest` stops there. */
#ifndef FEAST_SQLREG_TEST_CHECK_H
#define FEAST_SQLREG_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

static inline void check_count(int ok, const char *file, int line, const char *cond,
                               const char *what) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "%s:%d: FAILED: %s%s%.120s\n", file, line, cond, what ? " for " : "",
            what ? what : "");
}

/* Counts cond; on failure prints where, what, and (CHECK_CASE) which case. */
#define CHECK_CASE(cond, what) check_count((cond) != 0, __FILE__, __LINE__, #cond, (what))
#define CHECK(cond)            CHECK_CASE(cond, NULL)

/* The closing line, and the exit status. */
static inline int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}

#endif
