/* pb.c - see pb.h.
 *
 * Pattern used throughout: unpack with the default allocator, point fields
 * of the unpacked message at values we own (or at the other message), pack,
 * then put the original pointers back before protobuf_c_message_free_unpacked
 * so it frees exactly what unpack allocated.
 */
#include "pb.h"

#include <stdio.h>
#include <stdlib.h>

#include "feast_subset.pb-c.h"

enum { FEATURE_VIEW_STATE_AVAILABLE_ONLINE = 4 };

static const char *kind_name(obj_kind kind) {
    static const char *names[OBJ_KINDS] = {
        "project",
        "entity",
        "data source",
        "feature view",
        "stream feature view",
        "on-demand feature view",
        "label view",
        "feature service",
        "saved dataset",
        "validation reference",
        "permission",
        "infra",
    };
    return (unsigned)kind < OBJ_KINDS ? names[kind] : "object";
}

int pb_has_intervals(obj_kind kind) {
    return kind == OBJ_FEATURE_VIEW || kind == OBJ_STREAM_FEATURE_VIEW;
}

static int pack_into(const ProtobufCMessage *m, buf *out, obj_kind kind, char *errbuf,
                     size_t errlen) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (buf_reserve(out, n) != 0) {
        snprintf(errbuf, errlen, "out of memory serializing a %s", kind_name(kind));
        return -1;
    }
    out->n += protobuf_c_message_pack(m, out->p + out->n);
    return 0;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                                obj_kind kind, const char *which, char *errbuf, size_t errlen) {
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (!m)
        snprintf(errbuf, errlen, "the %s %s is not a valid serialized Feast object (%zu bytes)",
                 which, kind_name(kind), n);
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
static const ProtobufCMessageDescriptor *object_descriptor(obj_kind kind) {
    switch (kind) {
    case OBJ_FEATURE_VIEW:
    case OBJ_STREAM_FEATURE_VIEW:
        return &feast_sqlreg__feature_view_object__descriptor;
    case OBJ_DATA_SOURCE:
        return &feast_sqlreg__data_source_object__descriptor;
    case OBJ_VALIDATION_REFERENCE:
    case OBJ_INFRA:
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
    const ProtobufCMessageDescriptor *d = object_descriptor(kind);
    if (!d) {
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
        snprintf(errbuf, errlen, "a %s has no materialization intervals", kind_name(kind));
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
    uint32_t field; /* the project field's number */
    int in_spec = 1;
    switch (kind) {
    case OBJ_ENTITY:
        field = 9; /* EntitySpecV2.project */
        break;
    case OBJ_DATA_SOURCE:
        field = 21; /* DataSource.project */
        in_spec = 0;
        break;
    case OBJ_VALIDATION_REFERENCE:
        field = 3; /* ValidationReference.project */
        in_spec = 0;
        break;
    case OBJ_PROJECT:
    case OBJ_INFRA:
        return 0; /* not stamped */
    default:
        field = 2; /* <Kind>Spec.project */
    }
    if (!in_spec) return buf_ld_field(out, field, project, len);
    buf inner = {0};
    int rv = buf_ld_field(&inner, field, project, len);
    if (rv == 0) rv = buf_ld_field(out, 1, inner.p, inner.n);
    buf_free(&inner);
    return rv;
}
