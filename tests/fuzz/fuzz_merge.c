/* fuzz_merge.c - libFuzzer target for pb.c; the invariants are fuzz_merge() in
 * fuzz_checks.h, replayed without libFuzzer by tests/c/test_pb_fuzzregress.c. */
#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *bad = fuzz_merge(data, size);
    if (bad) {
        fprintf(stderr, "fuzz_merge: invariant broken: %s\n", bad);
        abort();
    }
    return 0;
}
