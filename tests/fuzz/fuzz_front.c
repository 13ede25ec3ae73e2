/* fuzz_front.c - libFuzzer target for the front's request path
 * (src/front/front.c through front_feed): bytes from a client, through nghttp2,
 * to an answer from the table or a reset; the invariants are fuzz_front()
 * in front_checks.h, replayed without libFuzzer by tests/c/test_front.c. */
#include <stdlib.h>

#include "front_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *bad = fuzz_front(data, size);
    if (bad) {
        fprintf(stderr, "fuzz_front: invariant broken: %s\n", bad);
        abort();
    }
    return 0;
}
