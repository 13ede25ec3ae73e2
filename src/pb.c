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
        "project",         "entity",        "data source",      "feature view",
        "stream feature view", "on-demand feature view", "label view", "feature service",
        "saved dataset",   "validation reference", "permission", "infra",
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

static int merge_feature_view(obj_kind kind, const uint8_t *newp, size_t newn, const uint8_t *oldp,
                              size_t oldn, buf *out, char *errbuf, size_t errlen) {
    const ProtobufCMessageDescriptor *d = &feast_sqlreg__feature_view_object__descriptor;
    FeastSqlreg__FeatureViewObject *nw =
        (FeastSqlreg__FeatureViewObject *)unpack(d, newp, newn, kind, "new", errbuf, errlen);
    if (!nw) return -1;
    FeastSqlreg__FeatureViewObject *old =
        (FeastSqlreg__FeatureViewObject *)unpack(d, oldp, oldn, kind, "stored", errbuf, errlen);
    if (!old) {
        protobuf_c_message_free_unpacked(&nw->base, NULL);
        return -1;
    }
    FeastSqlreg__FeatureViewMeta local = FEAST_SQLREG__FEATURE_VIEW_META__INIT;
    FeastSqlreg__FeatureViewMeta *saved_meta = nw->meta;
    if (!nw->meta) nw->meta = &local;
    FeastSqlreg__Timestamp *saved_created = nw->meta->created_timestamp;
    size_t saved_n = nw->meta->n_materialization_intervals;
    FeastSqlreg__MaterializationInterval **saved_iv = nw->meta->materialization_intervals;

    nw->meta->created_timestamp =
        old->meta && old->meta->created_timestamp ? old->meta->created_timestamp : &epoch;
    /* Stored intervals first, in their order, then the new object's that are
     * not stored yet. A writer holding a stale copy of the view (Feast's
     * materialize re-applies one to flip its state) cannot drop intervals
     * another job recorded meanwhile. */
    size_t nold = old->meta ? old->meta->n_materialization_intervals : 0;
    FeastSqlreg__MaterializationInterval **all = NULL;
    if (nold > 0) {
        all = malloc((nold + saved_n) * sizeof(*all));
        if (!all) {
            snprintf(errbuf, errlen, "out of memory");
            nw->meta->created_timestamp = saved_created;
            nw->meta = saved_meta;
            protobuf_c_message_free_unpacked(&nw->base, NULL);
            protobuf_c_message_free_unpacked(&old->base, NULL);
            return -1;
        }
        size_t n = 0;
        for (size_t i = 0; i < nold; i++) all[n++] = old->meta->materialization_intervals[i];
        for (size_t i = 0; i < saved_n; i++) {
            int dup = 0;
            for (size_t j = 0; j < nold && !dup; j++)
                dup = same_interval(saved_iv[i], old->meta->materialization_intervals[j]);
            if (!dup) all[n++] = saved_iv[i];
        }
        nw->meta->n_materialization_intervals = n;
        nw->meta->materialization_intervals = all;
    }
    int rv = pack_into(&nw->base, out, kind, errbuf, errlen);

    nw->meta->created_timestamp = saved_created;
    nw->meta->n_materialization_intervals = saved_n;
    nw->meta->materialization_intervals = saved_iv;
    nw->meta = saved_meta;
    free(all);
    protobuf_c_message_free_unpacked(&nw->base, NULL);
    protobuf_c_message_free_unpacked(&old->base, NULL);
    return rv;
}

static int merge_spec_meta(obj_kind kind, const uint8_t *newp, size_t newn, const uint8_t *oldp,
                           size_t oldn, buf *out, char *errbuf, size_t errlen) {
    const ProtobufCMessageDescriptor *d = &feast_sqlreg__spec_meta_object__descriptor;
    FeastSqlreg__SpecMetaObject *nw =
        (FeastSqlreg__SpecMetaObject *)unpack(d, newp, newn, kind, "new", errbuf, errlen);
    if (!nw) return -1;
    FeastSqlreg__SpecMetaObject *old =
        (FeastSqlreg__SpecMetaObject *)unpack(d, oldp, oldn, kind, "stored", errbuf, errlen);
    if (!old) {
        protobuf_c_message_free_unpacked(&nw->base, NULL);
        return -1;
    }
    FeastSqlreg__CommonMeta local = FEAST_SQLREG__COMMON_META__INIT;
    FeastSqlreg__CommonMeta *saved_meta = nw->meta;
    if (!nw->meta) nw->meta = &local;
    FeastSqlreg__Timestamp *saved_created = nw->meta->created_timestamp;
    nw->meta->created_timestamp =
        old->meta && old->meta->created_timestamp ? old->meta->created_timestamp : &epoch;
    int rv = pack_into(&nw->base, out, kind, errbuf, errlen);
    nw->meta->created_timestamp = saved_created;
    nw->meta = saved_meta;
    protobuf_c_message_free_unpacked(&nw->base, NULL);
    protobuf_c_message_free_unpacked(&old->base, NULL);
    return rv;
}

static int merge_data_source(const uint8_t *newp, size_t newn, const uint8_t *oldp, size_t oldn,
                             buf *out, char *errbuf, size_t errlen) {
    const obj_kind kind = OBJ_DATA_SOURCE;
    const ProtobufCMessageDescriptor *d = &feast_sqlreg__data_source_object__descriptor;
    FeastSqlreg__DataSourceObject *nw =
        (FeastSqlreg__DataSourceObject *)unpack(d, newp, newn, kind, "new", errbuf, errlen);
    if (!nw) return -1;
    FeastSqlreg__DataSourceObject *old =
        (FeastSqlreg__DataSourceObject *)unpack(d, oldp, oldn, kind, "stored", errbuf, errlen);
    if (!old) {
        protobuf_c_message_free_unpacked(&nw->base, NULL);
        return -1;
    }
    FeastSqlreg__DataSourceMeta local = FEAST_SQLREG__DATA_SOURCE_META__INIT;
    FeastSqlreg__DataSourceMeta *saved_meta = nw->meta;
    if (!nw->meta) nw->meta = &local;
    FeastSqlreg__Timestamp *saved_created = nw->meta->created_timestamp;
    nw->meta->created_timestamp =
        old->meta && old->meta->created_timestamp ? old->meta->created_timestamp : &epoch;
    int rv = pack_into(&nw->base, out, kind, errbuf, errlen);
    nw->meta->created_timestamp = saved_created;
    nw->meta = saved_meta;
    protobuf_c_message_free_unpacked(&nw->base, NULL);
    protobuf_c_message_free_unpacked(&old->base, NULL);
    return rv;
}

int pb_merge_for_update(obj_kind kind, const uint8_t *newp, size_t newn, const uint8_t *oldp,
                        size_t oldn, buf *out, char *errbuf, size_t errlen) {
    switch (kind) {
    case OBJ_FEATURE_VIEW:
    case OBJ_STREAM_FEATURE_VIEW:
        return merge_feature_view(kind, newp, newn, oldp, oldn, out, errbuf, errlen);
    case OBJ_DATA_SOURCE:
        return merge_data_source(newp, newn, oldp, oldn, out, errbuf, errlen);
    case OBJ_VALIDATION_REFERENCE:
    case OBJ_INFRA:
        /* No timestamps to keep: the new object is stored as given. */
        if (buf_put(out, newp, newn) != 0) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        return 0;
    default:
        return merge_spec_meta(kind, newp, newn, oldp, oldn, out, errbuf, errlen);
    }
}

int pb_append_interval(obj_kind kind, const uint8_t *p, size_t n, pb_ts start, pb_ts end,
                       pb_ts now, buf *out, char *errbuf, size_t errlen) {
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
    for (size_t i = 0; i < saved_n; i++) iv[i] = saved_iv[i];
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

int pb_project_last_updated(const uint8_t *p, size_t n, pb_ts *out, char *errbuf,
                            size_t errlen) {
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
