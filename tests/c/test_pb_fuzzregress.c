/* test_pb_fuzzregress.c - replays the fuzz corpus and every kept fuzzer
 * finding through pb.c without libFuzzer, under the sanitizers `make ctest`
 * builds with, checking the same invariants as the fuzz targets
 * (tests/fuzz/fuzz_checks.h). Runs from the repository root (or takes the
 * tests/fuzz directory as its argument).
 *
 *   tests/fuzz/regressions/  raw inputs; each goes through every entry point
 *                            as an object of every kind and as an input of
 *                            every target. Those named reject-* must be
 *                            rejected by pb_validate, with a message, as a
 *                            (stream) feature view: the kinds both fuzzer
 *                            findings were made in, and whose descriptor
 *                            reaches deepest (as another kind, a bad tag in
 *                            meta may sit in a field only passed through).
 *   tests/fuzz/corpus/<t>/   inputs of target t, from real Feast objects:
 *                            the invariants hold and pb_validate accepts the
 *                            objects they carry.
 * The last line is "pbfuzz: N passed, N failed".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz_checks.h"

static int passed, failed;

static void check(int ok, const char *file, const char *what, const char *detail) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "%s: FAILED: %s%s%s\n", file, what, detail ? ": " : "", detail ? detail : "");
}

static void check_inv(const char *file, const char *what, const char *bad) {
    check(bad == NULL, file, what, bad);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular file names in dir, sorted; *n set. NULL when dir is missing. */
static char **list_dir(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    *n = 0;
    if (!d) return NULL;
    size_t cap = 16;
    char **names = malloc(cap * sizeof(*names));
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            char **more = realloc(names, (cap *= 2) * sizeof(*names));
            if (!more) break;
            names = more;
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, *n, sizeof(*names), cmp_names);
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    size_t cap = 4096;
    uint8_t *p = malloc(cap);
    size_t got;
    while (p && (got = fread(p + *n, 1, cap - *n, f)) > 0) {
        *n += got;
        if (*n == cap) {
            uint8_t *more = realloc(p, cap *= 2);
            if (!more) free(p);
            p = more;
        }
    }
    fclose(f);
    return p;
}

/* Runs an input through every target's decoder. */
static void all_targets(const char *file, const uint8_t *p, size_t n) {
    check_inv(file, "as a validate input", fuzz_validate(p, n));
    check_inv(file, "as a merge input", fuzz_merge(p, n));
    check_inv(file, "as an append input", fuzz_append(p, n));
    check_inv(file, "as a project input", fuzz_project(p, n));
}

static void regression(const char *file, const uint8_t *p, size_t n) {
    /* A valid partner for merges: spec { name: "fv" }, meta { }. */
    static const uint8_t valid[] = {0x0a, 0x04, 0x0a, 0x02, 'f', 'v', 0x12, 0x00};
    int must_reject = strncmp(strrchr(file, '/') + 1, "reject-", 7) == 0;
    for (int k = 0; k < OBJ_KINDS; k++) {
        char err[256] = "";
        if (must_reject && pb_has_intervals((obj_kind)k)) {
            int rv = pb_validate((obj_kind)k, p, n, err, sizeof(err));
            check(rv == -1 && strstr(err, "not a valid serialized Feast object") != NULL, file,
                  "pb_validate did not reject it with a message", err);
        }
        check_inv(file, "validate", fuzz_validate_one((obj_kind)k, p, n));
        check_inv(file, "merge as new", fuzz_merge_one((obj_kind)k, p, n, valid, sizeof(valid)));
        check_inv(file, "merge as stored", fuzz_merge_one((obj_kind)k, valid, sizeof(valid), p, n));
        check_inv(file, "append",
                  fuzz_append_one((obj_kind)k, (pb_ts){1, 2}, (pb_ts){3, 4}, (pb_ts){5, 6}, p, n));
    }
    check_inv(file, "project last_updated", fuzz_project(p, n));
    all_targets(file, p, n);
}

/* The objects a corpus input of this target carries are valid. */
static void corpus_objects(const char *file, const char *target, const uint8_t *p, size_t n) {
    char err[256] = "";
    int ok = 0;
    if (strcmp(target, "validate") == 0 && n >= 1) {
        ok = pb_validate((obj_kind)(p[0] % OBJ_KINDS), p + 1, n - 1, err, sizeof(err)) == 0;
    } else if (strcmp(target, "merge") == 0 && n >= 3) {
        obj_kind k = (obj_kind)(p[0] % OBJ_KINDS);
        size_t rest = n - 3, split = ((size_t)p[1] | (size_t)p[2] << 8) % (rest + 1);
        ok = pb_validate(k, p + 3, split, err, sizeof(err)) == 0 &&
             pb_validate(k, p + 3 + split, rest - split, err, sizeof(err)) == 0;
    } else if (strcmp(target, "append") == 0 && n >= FUZZ_APPEND_HEADER) {
        ok = pb_validate(fuzz_append_kind(p[0]), p + FUZZ_APPEND_HEADER, n - FUZZ_APPEND_HEADER,
                         err, sizeof(err)) == 0;
    } else if (strcmp(target, "project") == 0) {
        ok = pb_validate(OBJ_PROJECT, p, n, err, sizeof(err)) == 0;
    }
    check(ok, file, "a corpus object is not accepted", err);
}

static const char *const TARGETS[] = {"validate", "merge", "append", "project"};

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/fuzz";
    char dir[1024], path[2048];
    size_t nfiles, ncorpus = 0, nreg = 0;

    snprintf(dir, sizeof(dir), "%s/regressions", root);
    char **names = list_dir(dir, &nfiles);
    check(names != NULL && nfiles >= 2, dir, "no regression inputs", NULL);
    for (size_t i = 0; names && i < nfiles; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        size_t n;
        uint8_t *p = read_all(path, &n);
        check(p != NULL, path, "cannot read", NULL);
        if (p) regression(path, p, n);
        free(p);
        nreg++;
    }
    free_names(names, nfiles);

    for (size_t t = 0; t < sizeof(TARGETS) / sizeof(*TARGETS); t++) {
        snprintf(dir, sizeof(dir), "%s/corpus/%s", root, TARGETS[t]);
        names = list_dir(dir, &nfiles);
        check(names != NULL && nfiles > 0, dir, "no corpus", NULL);
        for (size_t i = 0; names && i < nfiles; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            size_t n;
            uint8_t *p = read_all(path, &n);
            check(p != NULL, path, "cannot read", NULL);
            if (p) {
                corpus_objects(path, TARGETS[t], p, n);
                all_targets(path, p, n);
            }
            free(p);
            ncorpus++;
        }
        free_names(names, nfiles);
    }
    printf("pbfuzz: replayed %zu regressions and %zu corpus inputs\n", nreg, ncorpus);
    printf("pbfuzz: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
