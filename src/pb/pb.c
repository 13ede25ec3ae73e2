/* pb.c - see pb.h.
 *
 * Pattern used throughout: unpack with the default allocator, point fields
 * of the unpacked message at values we own (or at the other message), pack,
 * then put the original pointers back before protobuf_c_message_free_unpacked
 * so it frees exactly what unpack allocated.
 */
#include "pb/pb.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feast_subset.pb-c.h"

enum { FEATURE_VIEW_STATE_AVAILABLE_ONLINE = 4 };

int pb_has_intervals(obj_kind kind) {
    return (unsigned)kind < OBJ_KINDS && kind_of(kind)->intervals;
}

/* pb_validate, naming the input "stored" or "new" in the message. */
static int validate_as(obj_kind kind, const char *which, const uint8_t *p, size_t n, char *errbuf,
                       size_t errlen);

static int pack_into(const ProtobufCMessage *m, buf *out, obj_kind kind, char *errbuf,
                     size_t errlen) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (buf_reserve(out, n) != 0) {
        snprintf(errbuf, errlen, "out of memory serializing a %s", kind_noun(kind));
        return -1;
    }
    out->n += protobuf_c_message_pack(m, out->p + out->n);
    return 0;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                                obj_kind kind, const char *which, char *errbuf, size_t errlen) {
    /* Never hand protobuf-c bytes the walker has not passed: see walk(). */
    if (validate_as(kind, which, p, n, errbuf, errlen) != 0) return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (!m)
        snprintf(errbuf, errlen, "the %s %s is not a valid serialized Feast object (%zu bytes)",
                 which, kind_noun(kind), n);
    return m;
}

static int same_ts(const FeastSqlreg__Timestamp *a, const FeastSqlreg__Timestamp *b) {
    int64_t as = a ? a->seconds : 0, bs = b ? b->seconds : 0;
    int32_t an = a ? a->nanos : 0, bn = b ? b->nanos : 0;
    return as == bs && an == bn;
}

static int same_interval(const FeastSqlreg__MaterializationInterval *a,
                         const FeastSqlreg__MaterializationInterval *b) {
    return same_ts(a->start_time, b->start_time) && same_ts(a->end_time, b->end_time);
}

static FeastSqlreg__Timestamp epoch = FEAST_SQLREG__TIMESTAMP__INIT;

/* The message in which each kind keeps meta.created_timestamp. */
const ProtobufCMessageDescriptor *pb_object_descriptor(obj_kind kind) {
    switch ((unsigned)kind < OBJ_KINDS ? kind_of(kind)->layout : KIND_SPEC_META) {
    case KIND_FEATURE_VIEW:
        return &feast_sqlreg__feature_view_object__descriptor;
    case KIND_DATA_SOURCE:
        return &feast_sqlreg__data_source_object__descriptor;
    case KIND_OPAQUE:
        return NULL; /* no timestamps to keep */
    default:
        return &feast_sqlreg__spec_meta_object__descriptor;
    }
}

/* Where a message-typed field of m lives, found through the descriptor so
 * one merge serves every kind, whatever its meta's field numbers. */
static ProtobufCMessage **message_slot(ProtobufCMessage *m, const char *name) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    return (ProtobufCMessage **)((char *)m + f->offset);
}

/* Any meta message, for a new object that has none. */
typedef union {
    FeastSqlreg__FeatureViewMeta fv;
    FeastSqlreg__CommonMeta common;
    FeastSqlreg__DataSourceMeta ds;
} any_meta;

/* new.meta.materialization_intervals := stored ones, then new ones not
 * stored yet. *merged is what to free after packing. */
static int union_intervals(FeastSqlreg__FeatureViewMeta *nw,
                           const FeastSqlreg__FeatureViewMeta *old,
                           FeastSqlreg__MaterializationInterval ***merged) {
    size_t nold = old ? old->n_materialization_intervals : 0,
           nnew = nw->n_materialization_intervals;
    *merged = NULL;
    if (nold == 0) return 0;
    FeastSqlreg__MaterializationInterval **all = malloc((nold + nnew) * sizeof(*all));
    if (!all) return -1;
    size_t n = 0;
    for (size_t i = 0; i < nold; i++)
        all[n++] = old->materialization_intervals[i];
    for (size_t i = 0; i < nnew; i++) {
        int dup = 0;
        for (size_t j = 0; j < nold && !dup; j++)
            dup =
                same_interval(nw->materialization_intervals[i], old->materialization_intervals[j]);
        if (!dup) all[n++] = nw->materialization_intervals[i];
    }
    nw->n_materialization_intervals = n;
    nw->materialization_intervals = all;
    *merged = all;
    return 0;
}

int pb_merge_for_update(obj_kind kind, const uint8_t *newp, size_t newn, const uint8_t *oldp,
                        size_t oldn, buf *out, char *errbuf, size_t errlen) {
    const ProtobufCMessageDescriptor *d = pb_object_descriptor(kind);
    if (!d) {
        /* Passed through unparsed, but what we write must be readable. The
         * stored row is not needed: a broken one can still be replaced. */
        if (validate_as(kind, "new", newp, newn, errbuf, errlen) != 0) return -1;
        if (buf_put(out, newp, newn) == 0) return 0;
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    ProtobufCMessage *nw = unpack(d, newp, newn, kind, "new", errbuf, errlen);
    if (!nw) return -1;
    ProtobufCMessage *old = unpack(d, oldp, oldn, kind, "stored", errbuf, errlen);
    if (!old) {
        protobuf_c_message_free_unpacked(nw, NULL);
        return -1;
    }
    ProtobufCMessage **meta = message_slot(nw, "meta");
    ProtobufCMessage *saved_meta = *meta;
    any_meta local;
    if (!*meta) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, "meta");
        protobuf_c_message_init(f->descriptor, &local);
        *meta = (ProtobufCMessage *)&local;
    }
    ProtobufCMessage *old_meta = *message_slot(old, "meta");
    ProtobufCMessage **created = message_slot(*meta, "created_timestamp");
    ProtobufCMessage *saved_created = *created;
    ProtobufCMessage *old_created = old_meta ? *message_slot(old_meta, "created_timestamp") : NULL;
    *created = old_created ? old_created : &epoch.base;

    FeastSqlreg__FeatureViewMeta *fv = NULL;
    size_t saved_n = 0;
    FeastSqlreg__MaterializationInterval **saved_iv = NULL, **merged = NULL;
    int rv = 0;
    if (pb_has_intervals(kind)) {
        /* Stored intervals first: a writer holding a stale copy of the view
         * (Feast's materialize re-applies one to flip its state) cannot drop
         * intervals another job recorded meanwhile. */
        fv = (FeastSqlreg__FeatureViewMeta *)*meta;
        saved_n = fv->n_materialization_intervals;
        saved_iv = fv->materialization_intervals;
        rv = union_intervals(fv, (FeastSqlreg__FeatureViewMeta *)old_meta, &merged);
        if (rv != 0) snprintf(errbuf, errlen, "out of memory");
    }
    if (rv == 0) rv = pack_into(nw, out, kind, errbuf, errlen);

    if (fv) {
        fv->n_materialization_intervals = saved_n;
        fv->materialization_intervals = saved_iv;
    }
    free(merged);
    *created = saved_created;
    *meta = saved_meta;
    protobuf_c_message_free_unpacked(nw, NULL);
    protobuf_c_message_free_unpacked(old, NULL);
    return rv;
}

int pb_append_interval(obj_kind kind, const uint8_t *p, size_t n, pb_ts start, pb_ts end, pb_ts now,
                       buf *out, char *errbuf, size_t errlen) {
    if (!pb_has_intervals(kind)) {
        snprintf(errbuf, errlen, "a %s has no materialization intervals", kind_noun(kind));
        return -1;
    }
    FeastSqlreg__FeatureViewObject *fv = (FeastSqlreg__FeatureViewObject *)unpack(
        &feast_sqlreg__feature_view_object__descriptor, p, n, kind, "stored", errbuf, errlen);
    if (!fv) return -1;
    FeastSqlreg__FeatureViewMeta local = FEAST_SQLREG__FEATURE_VIEW_META__INIT;
    FeastSqlreg__FeatureViewMeta *saved_meta = fv->meta;
    if (!fv->meta) fv->meta = &local;
    FeastSqlreg__FeatureViewMeta *m = fv->meta;
    size_t saved_n = m->n_materialization_intervals;
    FeastSqlreg__MaterializationInterval **saved_iv = m->materialization_intervals;
    FeastSqlreg__Timestamp *saved_updated = m->last_updated_timestamp;
    int32_t saved_state = m->state;

    int rv = -1;
    FeastSqlreg__MaterializationInterval **iv = malloc((saved_n + 1) * sizeof(*iv));
    if (!iv) {
        snprintf(errbuf, errlen, "out of memory");
        goto done;
    }
    FeastSqlreg__Timestamp ts_start = FEAST_SQLREG__TIMESTAMP__INIT;
    FeastSqlreg__Timestamp ts_end = FEAST_SQLREG__TIMESTAMP__INIT;
    FeastSqlreg__Timestamp ts_now = FEAST_SQLREG__TIMESTAMP__INIT;
    FeastSqlreg__MaterializationInterval added = FEAST_SQLREG__MATERIALIZATION_INTERVAL__INIT;
    ts_start.seconds = start.seconds;
    ts_start.nanos = start.nanos;
    ts_end.seconds = end.seconds;
    ts_end.nanos = end.nanos;
    ts_now.seconds = now.seconds;
    ts_now.nanos = now.nanos;
    added.start_time = &ts_start;
    added.end_time = &ts_end;
    for (size_t i = 0; i < saved_n; i++)
        iv[i] = saved_iv[i];
    iv[saved_n] = &added;
    m->materialization_intervals = iv;
    m->n_materialization_intervals = saved_n + 1;
    m->last_updated_timestamp = &ts_now;
    m->state = FEATURE_VIEW_STATE_AVAILABLE_ONLINE;
    rv = pack_into(&fv->base, out, kind, errbuf, errlen);
    m->materialization_intervals = saved_iv;
    m->n_materialization_intervals = saved_n;
    m->last_updated_timestamp = saved_updated;
    m->state = saved_state;
    free(iv);
done:
    fv->meta = saved_meta;
    protobuf_c_message_free_unpacked(&fv->base, NULL);
    return rv;
}

int pb_project_last_updated(const uint8_t *p, size_t n, pb_ts *out, char *errbuf, size_t errlen) {
    FeastSqlreg__SpecMetaObject *pr = (FeastSqlreg__SpecMetaObject *)unpack(
        &feast_sqlreg__spec_meta_object__descriptor, p, n, OBJ_PROJECT, "stored", errbuf, errlen);
    if (!pr) return -1;
    out->seconds = 0;
    out->nanos = 0;
    if (pr->meta && pr->meta->last_updated_timestamp) {
        out->seconds = pr->meta->last_updated_timestamp->seconds;
        out->nanos = pr->meta->last_updated_timestamp->nanos;
    }
    protobuf_c_message_free_unpacked(&pr->base, NULL);
    return 0;
}

int pb_project_stamp(obj_kind kind, const char *project, size_t len, buf *out) {
    if ((unsigned)kind >= OBJ_KINDS || kind_of(kind)->project_no == 0) return 0; /* not stamped */
    uint32_t field = kind_of(kind)->project_no; /* the project field's number */
    if (!kind_of(kind)->in_spec) return buf_ld_field(out, field, project, len);
    buf inner = {0};
    int rv = buf_ld_field(&inner, field, project, len);
    if (rv == 0) rv = buf_ld_field(out, 1, inner.p, inner.n);
    buf_free(&inner);
    return rv;
}

/* The wire walker behind pb_validate.
 *
 * protobuf-c 1.4.1 trusts its input more than stored rows deserve: an
 * over-long tag varint makes parse_tag_and_wiretype shift a byte past the
 * width of int (undefined behaviour, found by UBSan), and field number 0
 * written as an over-long tag (0x80 0x00) is accepted, kept as an unknown
 * field and packed back as a plain 0x00 tag that protobuf-c itself then
 * rejects. So every byte string is walked here first, with the rules of
 * the wire format plus protobuf-c's own limits (tags and lengths of at most
 * 5 bytes, lengths up to INT_MAX). The walk is driven by the descriptors
 * pb.c unpacks with: a field they declare must have the wire type protobuf-c
 * expects, one declared as a message is walked too, and `spec` (bytes in
 * our subset, a message in every Feast object that has it) is walked at the
 * top level. Whatever passes unpacks with protobuf-c, and what pb.c packs
 * from it passes again. */

enum {
    WIRE_VARINT = 0,
    WIRE_64BIT = 1,
    WIRE_LEN = 2,
    WIRE_32BIT = 5,
    FIELD_NUMBER_MAX = (1 << 29) - 1,
    /* Our descriptors nest three deep; this only guards a future
     * self-referencing message against unbounded recursion. */
    WALK_DEPTH_MAX = 16,
};

typedef struct {
    obj_kind kind;
    const char *which; /* "stored" or "new" */
    char *errbuf;
    size_t errlen;
} walk_ctx;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
walk_fail(const walk_ctx *w, size_t at, const char *fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(w->errbuf, w->errlen,
             "the %s %s is not a valid serialized Feast object: %s at byte %zu", w->which,
             kind_noun(w->kind), what, at);
    return -1;
}

/* Reads the varint at p[*i..end) of at most max bytes into *v (bits past 64
 * are dropped, as protobuf-c does) and its length into *len. Returns 0 and
 * moves *i past it, 1 when it runs past end, 2 when it is longer than max. */
static int read_varint(const uint8_t *p, size_t end, size_t *i, unsigned max, uint64_t *v,
                       unsigned *len) {
    uint64_t val = 0;
    for (unsigned k = 0; k < max; k++) {
        if (*i + k >= end) return 1;
        uint8_t b = p[*i + k];
        val |= (uint64_t)(b & 0x7f) << (7 * k); /* k < max <= 10 */
        if (!(b & 0x80)) {
            *v = val;
            *len = k + 1;
            *i += k + 1;
            return 0;
        }
    }
    return 2;
}

/* Strict UTF-8 as protobuf's parsers check it: no overlong forms, no
 * surrogates, nothing past U+10FFFF. */
static int utf8_ok(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            len = 2, cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3, cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4, cp = b & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static int strings_ok(const uint8_t *p, size_t end, size_t i, int depth) {
    if (depth > WALK_DEPTH_MAX) return 0;
    while (i < end) {
        uint64_t tag, v;
        unsigned len;
        if (read_varint(p, end, &i, 5, &tag, &len) != 0 || (tag >> 3) == 0) return 0;
        switch (tag & 7) {
        case WIRE_VARINT:
            if (read_varint(p, end, &i, 10, &v, &len) != 0) return 0;
            break;
        case WIRE_64BIT:
        case WIRE_32BIT: {
            size_t w = (tag & 7) == WIRE_64BIT ? 8 : 4;
            if (end - i < w) return 0;
            i += w;
            break;
        }
        case WIRE_LEN:
            if (read_varint(p, end, &i, 10, &v, &len) != 0 || v > end - i) return 0;
            if (!utf8_ok(p + i, (size_t)v) && !strings_ok(p, i + (size_t)v, i, depth + 1)) return 0;
            i += (size_t)v;
            break;
        default: /* groups: Feast has none */
            return 0;
        }
    }
    return 1;
}

int pb_strings_ok(const uint8_t *p, size_t n) {
    return strings_ok(p, n, 0, 0);
}

int pb_read_request(const uint8_t *p, size_t n, pb_req_field *fields, size_t nfields) {
    for (size_t k = 0; k < nfields; k++) {
        fields[k].present = 0;
        fields[k].p = (const uint8_t *)"";
        fields[k].n = 0;
        fields[k].value = 0;
    }
    size_t i = 0;
    while (i < n) {
        uint64_t tag, v;
        unsigned len;
        /* The tag, under walk()'s rules. */
        if (read_varint(p, n, &i, 5, &tag, &len) != 0) return -1;
        if (len > 1 && p[i - 1] == 0) return -1; /* overlong */
        uint64_t number = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (number == 0 || number > FIELD_NUMBER_MAX) return -1;
        pb_req_field *f = NULL;
        for (size_t k = 0; k < nfields && !f; k++)
            if (fields[k].number != 0 && fields[k].number == number) f = &fields[k];
        if (!f) return -1; /* not ours to read */
        if (f->type == PB_REQ_BOOL) {
            if (wt != WIRE_VARINT || read_varint(p, n, &i, 10, &v, &len) != 0) return -1;
            f->value = v != 0;
        } else {
            if (wt != WIRE_LEN || read_varint(p, n, &i, 5, &v, &len) != 0) return -1;
            if (v > INT_MAX || v > n - i || !utf8_ok(p + i, (size_t)v)) return -1;
            f->p = p + i;
            f->n = (size_t)v;
            i += (size_t)v;
        }
        f->present = 1;
    }
    return 0;
}

/* The wire type protobuf-c accepts for a field of this type. */
static unsigned wire_type_of(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_32BIT;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_64BIT;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    default:
        return WIRE_VARINT;
    }
}

/* A packed repeated scalar, p[start..end): whole elements only, as
 * protobuf-c's count_packed_elements requires. */
static int walk_packed(const walk_ctx *w, unsigned wt, const uint8_t *p, size_t start, size_t end) {
    size_t n = end - start;
    if (wt == WIRE_32BIT && n % 4 != 0) return walk_fail(w, start, "packed fixed32 list cut short");
    if (wt == WIRE_64BIT && n % 8 != 0) return walk_fail(w, start, "packed fixed64 list cut short");
    if (wt != WIRE_VARINT) return 0;
    for (size_t i = start; i < end;) {
        size_t at = i;
        uint64_t v;
        unsigned len;
        if (read_varint(p, end, &i, 10, &v, &len) != 0)
            return walk_fail(w, at, "bad varint in a packed list");
    }
    return 0;
}

/* Walks the message p[start..end) described by d (NULL: wire format only). */
static int walk(const walk_ctx *w, const ProtobufCMessageDescriptor *d, int depth, const uint8_t *p,
                size_t start, size_t end) {
    if (depth > WALK_DEPTH_MAX) return walk_fail(w, start, "messages nested too deep");
    size_t i = start;
    while (i < end) {
        size_t at = i;
        uint64_t tag, v;
        unsigned len;
        int r = read_varint(p, end, &i, 5, &tag, &len);
        if (r == 1) return walk_fail(w, at, "truncated tag");
        if (r == 2) return walk_fail(w, at, "tag longer than 5 bytes");
        uint64_t number = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (number == 0) return walk_fail(w, at, "field number 0");
        if (number > FIELD_NUMBER_MAX)
            return walk_fail(w, at, "field number %llu out of range", (unsigned long long)number);
        if (len > 1 && p[i - 1] == 0) return walk_fail(w, at, "overlong tag");
        size_t body = i, body_end;
        switch (wt) {
        case WIRE_VARINT:
            r = read_varint(p, end, &i, 10, &v, &len);
            if (r == 1) return walk_fail(w, body, "truncated varint");
            if (r == 2) return walk_fail(w, body, "varint longer than 10 bytes");
            break;
        case WIRE_64BIT:
            if (end - i < 8) return walk_fail(w, body, "fixed64 past the end");
            i += 8;
            break;
        case WIRE_32BIT:
            if (end - i < 4) return walk_fail(w, body, "fixed32 past the end");
            i += 4;
            break;
        case WIRE_LEN:
            r = read_varint(p, end, &i, 5, &v, &len);
            if (r == 1) return walk_fail(w, body, "truncated length");
            if (r == 2) return walk_fail(w, body, "length longer than 5 bytes");
            if (v > INT_MAX || v > end - i)
                return walk_fail(w, body, "length %llu past the end", (unsigned long long)v);
            body = i;
            i += (size_t)v;
            break;
        case 3:
        case 4:
            return walk_fail(w, at, "group (wire type %u) in field %llu", wt,
                             (unsigned long long)number);
        default:
            return walk_fail(w, at, "wire type %u in field %llu", wt, (unsigned long long)number);
        }
        body_end = i;
        const ProtobufCFieldDescriptor *f =
            d ? protobuf_c_message_descriptor_get_field(d, (unsigned)number) : NULL;
        if (!f) continue; /* unknown: kept as it is */
        unsigned want = wire_type_of(f->type);
        if (wt != want) {
            if (wt == WIRE_LEN && f->label == PROTOBUF_C_LABEL_REPEATED && want != WIRE_LEN) {
                if (walk_packed(w, want, p, body, body_end) != 0) return -1;
                continue;
            }
            return walk_fail(w, at, "field %llu (%s) has wire type %u, not %u",
                             (unsigned long long)number, f->name, wt, want);
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (walk(w, f->descriptor, depth + 1, p, body, body_end) != 0) return -1;
        } else if (depth == 0 && f->type == PROTOBUF_C_TYPE_BYTES && strcmp(f->name, "spec") == 0) {
            if (walk(w, NULL, depth + 1, p, body, body_end) != 0) return -1;
        }
    }
    return 0;
}

static int validate_as(obj_kind kind, const char *which, const uint8_t *p, size_t n, char *errbuf,
                       size_t errlen) {
    walk_ctx w = {kind, which, errbuf, errlen};
    /* An Infra with no objects serializes to nothing, and Feast stores it. */
    if (n == 0 && kind != OBJ_INFRA) {
        snprintf(errbuf, errlen, "the %s %s is empty", which, kind_noun(kind));
        return -1;
    }
    return walk(&w, pb_object_descriptor(kind), 0, p, 0, n);
}

int pb_validate(obj_kind kind, const uint8_t *p, size_t n, char *errbuf, size_t errlen) {
    return validate_as(kind, "stored", p, n, errbuf, errlen);
}
