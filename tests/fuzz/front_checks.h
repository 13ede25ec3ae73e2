/* front_checks.h - what the libFuzzer target tests/fuzz/fuzz_front.c
 * asserts about the front's request path, shared with tests/c/test_front.c,
 * which replays the corpus (tests/fuzz/corpus/front/) and the kept findings
 * (tests/fuzz/regressions/front-*) through it without libFuzzer.
 *
 * An input is what an HTTP/2 client sends on one connection: the preface,
 * SETTINGS, HEADERS and DATA of gRPC calls (scripts/make_fuzz_corpus.py
 * writes valid ones), fed through front_feed to the client session of a
 * front whose table answers a few Gets; calls it would relay or fetch are
 * reset (no backend, no store). The input's length also picks the size of
 * the pieces the bytes arrive in (as a socket may cut them anywhere, and
 * the front sends between pieces): one piece when a multiple of 4, else
 * 16 to 1039 bytes; so every input keeps a valid client's bytes as they
 * are.
 * fuzz_front() returns NULL when every invariant holds, or a description
 * of the broken one.
 */
#ifndef FEAST_SQLREG_FRONT_CHECKS_H
#define FEAST_SQLREG_FRONT_CHECKS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/front.h"

/* The methods the corpus calls: Feast's Get paths, with Feast's field
 * numbers, and one with others (a message with no project). */
static const char *const FUZZ_FRONT_METHODS[] = {
    "/feast.registry.RegistryServer/GetEntity",
    "/feast.registry.RegistryServer/GetFeatureView",
    "/t.S/GetOther",
};
static const obj_kind FUZZ_FRONT_KINDS[] = {OBJ_ENTITY, OBJ_FEATURE_VIEW, OBJ_FEATURE_SERVICE};
static const front_fields FUZZ_FRONT_FIELDS[] = {{1, 2, 3}, {1, 2, 3}, {7, 0, 5}};
enum { FUZZ_FRONT_NMETHODS = 3 };

static char fuzz_front_why[256];

/* The table: (method, project, name) -> message, built once. */
static inline const front_answers *fuzz_front_table(void) {
    static front_answers *a;
    if (!a) {
        a = front_answers_new(4);
        if (!a || front_answers_add(a, 0, "proj", 4, "driver", 6, "\x0a\x02\x0a\x00", 4) != 0 ||
            front_answers_add(a, 1, "proj", 4, "driver_hourly_stats", 19, "fv", 2) != 0 ||
            front_answers_add(a, 1, "", 0, "", 0, "", 0) != 0 ||
            front_answers_add(a, 2, "", 0, "svc", 3, "other", 5) != 0)
            abort();
    }
    return a;
}

static inline const char *fuzz_front(const uint8_t *data, size_t n) {
    front_stats st;
    size_t chunk = n % 4 == 0 ? 0 : 16 + n % 1024;
    long sent = front_feed(FUZZ_FRONT_METHODS, FUZZ_FRONT_KINDS, FUZZ_FRONT_FIELDS,
                           FUZZ_FRONT_NMETHODS, fuzz_front_table(), data, n, chunk, &st);
    if (sent < 0) return "front_feed ran out of memory";
    /* Every byte a stream held was let go with the connection. */
    if (st.held != 0) {
        snprintf(fuzz_front_why, sizeof(fuzz_front_why),
                 "%lld bytes still counted as held after the connection closed",
                 (long long)st.held);
        return fuzz_front_why;
    }
    if (st.connections != 1 || st.relayed != 0 || st.fetched != 0)
        return "a socketless front relayed or fetched a call";
    /* An answer is sent after the server's SETTINGS, in frames. */
    if (st.answered > 0 && sent < 9) return "answered a call without a byte sent";
    return NULL;
}

#endif
