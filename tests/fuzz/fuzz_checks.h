/* fuzz_checks.h - what each libFuzzer target in tests/fuzz/ asserts, shared
 * with tests/c/test_pb_fuzzregress.c so the corpus and every kept crash are
 * replayed by `make ctest` without libFuzzer.
 *
 * One target per pb.c function that parses stored bytes. Each input is
 * decoded the same way here for the fuzzer and for the replay:
 *   validate  kind byte, object
 *   merge     kind byte, 2-byte little-endian split, new object, stored object
 *   append    kind byte, start, end, now (int64 seconds + int32 nanos each,
 *             little-endian), object; the kind byte's top bit clear picks a
 *             (stream) feature view from its low bit, set picks any kind
 *   project   object
 * Each fuzz_<target>() returns NULL when every invariant holds, or a
 * description of the broken one.
 */
#ifndef FEAST_SQLREG_FUZZ_CHECKS_H
#define FEAST_SQLREG_FUZZ_CHECKS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feast_subset.pb-c.h"
#include "pb/pb.h"

enum { FUZZ_TS_BYTES = 12, FUZZ_APPEND_HEADER = 1 + 3 * FUZZ_TS_BYTES };

static char fuzz_why[512];

/* The descriptor pb.c unpacks each kind with (NULL: passed through). */
static inline const ProtobufCMessageDescriptor *fuzz_descriptor(obj_kind kind) {
    return pb_object_descriptor(kind);
}

static inline const char *fuzz_fail(const char *what, const char *err) {
    snprintf(fuzz_why, sizeof(fuzz_why), "%s%s%s", what, err ? ": " : "", err ? err : "");
    return fuzz_why;
}

static inline pb_ts fuzz_ts(const uint8_t *p) {
    uint64_t s = 0;
    uint32_t ns = 0;
    for (int i = 7; i >= 0; i--)
        s = s << 8 | p[i];
    for (int i = 11; i >= 8; i--)
        ns = ns << 8 | p[i];
    pb_ts t;
    memcpy(&t.seconds, &s, sizeof(s));
    memcpy(&t.nanos, &ns, sizeof(ns));
    return t;
}

/* created_timestamp of an unpacked object (0, 0 when unset). */
static inline void fuzz_created(obj_kind kind, const ProtobufCMessage *m, pb_ts *out) {
    const FeastSqlreg__Timestamp *c = NULL;
    if (kind == OBJ_FEATURE_VIEW || kind == OBJ_STREAM_FEATURE_VIEW) {
        const FeastSqlreg__FeatureViewObject *o = (const void *)m;
        c = o->meta ? o->meta->created_timestamp : NULL;
    } else if (kind == OBJ_DATA_SOURCE) {
        const FeastSqlreg__DataSourceObject *o = (const void *)m;
        c = o->meta ? o->meta->created_timestamp : NULL;
    } else {
        const FeastSqlreg__SpecMetaObject *o = (const void *)m;
        c = o->meta ? o->meta->created_timestamp : NULL;
    }
    out->seconds = c ? c->seconds : 0;
    out->nanos = c ? c->nanos : 0;
}

static inline int fuzz_same_ts(const FeastSqlreg__Timestamp *a, const FeastSqlreg__Timestamp *b) {
    return (a ? a->seconds : 0) == (b ? b->seconds : 0) && (a ? a->nanos : 0) == (b ? b->nanos : 0);
}

static inline int fuzz_same_iv(const FeastSqlreg__MaterializationInterval *a,
                               const FeastSqlreg__MaterializationInterval *b) {
    return fuzz_same_ts(a->start_time, b->start_time) && fuzz_same_ts(a->end_time, b->end_time);
}

static inline size_t fuzz_n_iv(const FeastSqlreg__FeatureViewObject *o) {
    return o->meta ? o->meta->n_materialization_intervals : 0;
}

/* Bytes pb_validate accepts unpack, and pack back into bytes it accepts. */
static inline const char *fuzz_validate_one(obj_kind kind, const uint8_t *p, size_t n) {
    char err[256] = "";
    if (pb_validate(kind, p, n, err, sizeof(err)) != 0)
        return err[0] && strstr(err, "stored") ? NULL : fuzz_fail("rejected with no message", err);
    const ProtobufCMessageDescriptor *d = fuzz_descriptor(kind);
    if (!d) return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (!m) return fuzz_fail("pb_validate accepted what protobuf-c cannot unpack", NULL);
    const char *bad = NULL;
    size_t rn = protobuf_c_message_get_packed_size(m);
    uint8_t *r = malloc(rn ? rn : 1);
    if (!r) abort();
    protobuf_c_message_pack(m, r);
    protobuf_c_message_free_unpacked(m, NULL);
    /* An empty repack is legal protobuf, but not a Feast object. */
    if (rn > 0 && pb_validate(kind, r, rn, err, sizeof(err)) != 0)
        bad = fuzz_fail("protobuf-c repacked accepted bytes into rejected ones", err);
    m = protobuf_c_message_unpack(d, NULL, rn, r);
    if (!m && !bad) bad = fuzz_fail("protobuf-c cannot unpack its own repack", NULL);
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    free(r);
    return bad;
}

static inline const char *fuzz_validate(const uint8_t *data, size_t size) {
    if (size < 1) return NULL;
    return fuzz_validate_one((obj_kind)(data[0] % OBJ_KINDS), data + 1, size - 1);
}

/* Merge succeeds exactly when both inputs validate (only the new one for
 * kinds passed through), its output validates and unpacks, keeps the
 * stored created_timestamp, and lists the stored intervals first followed
 * by the new ones not stored yet. */
static inline const char *fuzz_merge_one(obj_kind kind, const uint8_t *np, size_t nn,
                                         const uint8_t *op, size_t on) {
    char err[256] = "", e2[256];
    buf out = {0};
    const ProtobufCMessageDescriptor *d = fuzz_descriptor(kind);
    int rv = pb_merge_for_update(kind, np, nn, op, on, &out, err, sizeof(err));
    int want = pb_validate(kind, np, nn, e2, sizeof(e2)) == 0 &&
               (!d || pb_validate(kind, op, on, e2, sizeof(e2)) == 0);
    const char *bad = NULL;
    ProtobufCMessage *mo = NULL, *mn = NULL, *mm = NULL;
    if (rv != 0) {
        if (want)
            bad = fuzz_fail("merge failed on valid inputs", err);
        else if (!err[0])
            bad = fuzz_fail("merge failed with no message", NULL);
        goto done;
    }
    if (!want) {
        bad = fuzz_fail("merge accepted invalid input", NULL);
        goto done;
    }
    if (pb_validate(kind, out.p, out.n, err, sizeof(err)) != 0) {
        bad = fuzz_fail("merge wrote bytes pb_validate rejects", err);
        goto done;
    }
    if (!d) {
        if (out.n != nn || (nn && memcmp(out.p, np, nn) != 0))
            bad = fuzz_fail("a passed-through kind was changed", NULL);
        goto done;
    }
    mm = protobuf_c_message_unpack(d, NULL, out.n, out.p);
    mo = protobuf_c_message_unpack(d, NULL, on, op);
    mn = protobuf_c_message_unpack(d, NULL, nn, np);
    if (!mm || !mo || !mn) {
        bad = fuzz_fail("protobuf-c cannot unpack merge input or output", NULL);
        goto done;
    }
    pb_ts a, b;
    fuzz_created(kind, mm, &a);
    fuzz_created(kind, mo, &b);
    if (a.seconds != b.seconds || a.nanos != b.nanos) {
        bad = fuzz_fail("merge lost the stored created_timestamp", NULL);
        goto done;
    }
    if (pb_has_intervals(kind)) {
        const FeastSqlreg__FeatureViewObject *fm = (const void *)mm, *fo = (const void *)mo,
                                             *fn = (const void *)mn;
        size_t no = fuzz_n_iv(fo), nw = fuzz_n_iv(fn), expect = no;
        for (size_t i = 0; i < nw; i++) {
            int dup = 0;
            for (size_t j = 0; j < no && !dup; j++)
                dup = fuzz_same_iv(fn->meta->materialization_intervals[i],
                                   fo->meta->materialization_intervals[j]);
            if (!dup) expect++;
        }
        if (fuzz_n_iv(fm) != expect) {
            bad = fuzz_fail("merge has the wrong number of intervals", NULL);
            goto done;
        }
        for (size_t i = 0; i < no; i++)
            if (!fuzz_same_iv(fm->meta->materialization_intervals[i],
                              fo->meta->materialization_intervals[i])) {
                bad = fuzz_fail("merge did not keep the stored intervals first", NULL);
                goto done;
            }
    }
done:
    if (mm) protobuf_c_message_free_unpacked(mm, NULL);
    if (mo) protobuf_c_message_free_unpacked(mo, NULL);
    if (mn) protobuf_c_message_free_unpacked(mn, NULL);
    buf_free(&out);
    return bad;
}

static inline const char *fuzz_merge(const uint8_t *data, size_t size) {
    if (size < 3) return NULL;
    obj_kind kind = (obj_kind)(data[0] % OBJ_KINDS);
    size_t rest = size - 3, split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    return fuzz_merge_one(kind, data + 3, split, data + 3 + split, rest - split);
}

/* Append succeeds exactly for a valid (stream) feature view, and writes one
 * more interval, the given one, last, with state and last-updated set. */
static inline const char *fuzz_append_one(obj_kind kind, pb_ts start, pb_ts end, pb_ts now,
                                          const uint8_t *p, size_t n) {
    char err[256] = "", e2[256];
    buf out = {0};
    int rv = pb_append_interval(kind, p, n, start, end, now, &out, err, sizeof(err));
    int want = pb_has_intervals(kind) && pb_validate(kind, p, n, e2, sizeof(e2)) == 0;
    const char *bad = NULL;
    FeastSqlreg__FeatureViewObject *in = NULL, *o = NULL;
    if (rv != 0) {
        if (want)
            bad = fuzz_fail("append failed on a valid feature view", err);
        else if (!err[0])
            bad = fuzz_fail("append failed with no message", NULL);
        goto done;
    }
    if (!want) {
        bad = fuzz_fail("append accepted invalid input", NULL);
        goto done;
    }
    if (pb_validate(kind, out.p, out.n, err, sizeof(err)) != 0) {
        bad = fuzz_fail("append wrote bytes pb_validate rejects", err);
        goto done;
    }
    in = feast_sqlreg__feature_view_object__unpack(NULL, n, p);
    o = feast_sqlreg__feature_view_object__unpack(NULL, out.n, out.p);
    if (!in || !o) {
        bad = fuzz_fail("protobuf-c cannot unpack append input or output", NULL);
        goto done;
    }
    size_t k = fuzz_n_iv(in);
    if (fuzz_n_iv(o) != k + 1) {
        bad = fuzz_fail("append did not add exactly one interval", NULL);
        goto done;
    }
    const FeastSqlreg__MaterializationInterval *last = o->meta->materialization_intervals[k];
    const FeastSqlreg__Timestamp *u = o->meta->last_updated_timestamp;
    if (!last->start_time || last->start_time->seconds != start.seconds ||
        last->start_time->nanos != start.nanos || !last->end_time ||
        last->end_time->seconds != end.seconds || last->end_time->nanos != end.nanos || !u ||
        u->seconds != now.seconds || u->nanos != now.nanos || o->meta->state != 4)
        bad = fuzz_fail("append wrote the wrong interval, state or last_updated", NULL);
done:
    if (in) feast_sqlreg__feature_view_object__free_unpacked(in, NULL);
    if (o) feast_sqlreg__feature_view_object__free_unpacked(o, NULL);
    buf_free(&out);
    return bad;
}

static inline obj_kind fuzz_append_kind(uint8_t b) {
    if (b & 0x80) return (obj_kind)((b & 0x7f) % OBJ_KINDS);
    return b & 1 ? OBJ_STREAM_FEATURE_VIEW : OBJ_FEATURE_VIEW;
}

static inline const char *fuzz_append(const uint8_t *data, size_t size) {
    if (size < FUZZ_APPEND_HEADER) return NULL;
    return fuzz_append_one(fuzz_append_kind(data[0]), fuzz_ts(data + 1),
                           fuzz_ts(data + 1 + FUZZ_TS_BYTES), fuzz_ts(data + 1 + 2 * FUZZ_TS_BYTES),
                           data + FUZZ_APPEND_HEADER, size - FUZZ_APPEND_HEADER);
}

/* The project's last-updated is read exactly when the project validates,
 * and equals what protobuf-c reads. */
static inline const char *fuzz_project(const uint8_t *p, size_t n) {
    char err[256] = "", e2[256];
    pb_ts ts = {-1, -1};
    int rv = pb_project_last_updated(p, n, &ts, err, sizeof(err));
    int want = pb_validate(OBJ_PROJECT, p, n, e2, sizeof(e2)) == 0;
    if (rv != 0) {
        if (want) return fuzz_fail("last_updated failed on a valid project", err);
        return err[0] ? NULL : fuzz_fail("last_updated failed with no message", NULL);
    }
    if (!want) return fuzz_fail("last_updated accepted an invalid project", NULL);
    FeastSqlreg__SpecMetaObject *m = feast_sqlreg__spec_meta_object__unpack(NULL, n, p);
    if (!m) return fuzz_fail("protobuf-c cannot unpack a valid project", NULL);
    const FeastSqlreg__Timestamp *u = m->meta ? m->meta->last_updated_timestamp : NULL;
    int same = ts.seconds == (u ? u->seconds : 0) && ts.nanos == (u ? u->nanos : 0);
    feast_sqlreg__spec_meta_object__free_unpacked(m, NULL);
    return same ? NULL : fuzz_fail("last_updated differs from protobuf-c's", NULL);
}

#endif
