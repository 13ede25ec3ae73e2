/* assemble.c - the whole registry as one serialized feast.core.Registry,
 * streamed from the stored rows in one read transaction (store_registry). */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/kinds.h"
#include "pb/pb.h"

/* The order in which Feast's SqlRegistry.proto() adds each project's objects;
 * kept so repeated fields come out in the same order as stock. */
static const obj_kind REGISTRY_ORDER[] = {
    OBJ_ENTITY,
    OBJ_FEATURE_VIEW,
    OBJ_DATA_SOURCE,
    OBJ_ON_DEMAND_FEATURE_VIEW,
    OBJ_STREAM_FEATURE_VIEW,
    OBJ_FEATURE_SERVICE,
    OBJ_SAVED_DATASET,
    OBJ_VALIDATION_REFERENCE,
    OBJ_PERMISSION,
    OBJ_LABEL_VIEW,
};
#define NREG (sizeof(REGISTRY_ORDER) / sizeof(REGISTRY_ORDER[0]))

typedef struct {
    buf *out;
    rowset projects;  /* (project_id, proto) */
    buf *per_project; /* one buffer per project, for the table being read */
    rowset *bad;
} registry_ctx;

static long project_index(const rowset *projects, db_value id) {
    for (size_t i = 0; i < projects->nrows; i++) {
        db_value v = rowset_get(projects, i, 0);
        if (v.n == id.n && memcmp(v.p, id.p, v.n) == 0) return (long)i;
    }
    return -1;
}

static int registry_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    registry_ctx *r = ctx;
    if (exec(d, c, "SELECT project_id, project_proto FROM projects", NULL, 0, &r->projects, NULL,
             err) != 0)
        return -1;
    /* A project whose own row is bad is left out, and so are its objects. */
    row_filter pf = {OBJ_PROJECT, 0, 0, 1, NULL, r->bad, err, 0};
    keep_rows(&r->projects, row_ok, &pf);
    if (pf.failed) return -1;
    size_t np = r->projects.nrows;
    if (np == 0) return 0;
    pb_ts latest = {0, 0};
    int have_latest = 0;
    for (size_t i = 0; i < np; i++) {
        db_value proto = rowset_get(&r->projects, i, 1);
        if (buf_ld_field(r->out, kind_of(OBJ_PROJECT)->reg_field, proto.p, proto.n) != 0) goto oom;
        pb_ts ts;
        char msg[256];
        if (pb_project_last_updated(proto.p, proto.n, &ts, msg, sizeof(msg)) != 0) {
            bad_row_err(err, OBJ_PROJECT, rowset_get(&r->projects, i, 0),
                        rowset_get(&r->projects, i, 0), msg);
            return -1;
        }
        if (!have_latest || ts.seconds > latest.seconds ||
            (ts.seconds == latest.seconds && ts.nanos > latest.nanos))
            latest = ts;
        have_latest = 1;
    }
    r->per_project = calloc(np, sizeof(buf));
    if (!r->per_project) goto oom;

    for (size_t t = 0; t < NREG; t++) {
        obj_kind k = REGISTRY_ORDER[t];
        rowset rows = {0};
        if (exec(d, c, st->sql[k].list_all, NULL, 0, &rows, NULL, err) != 0) {
            rowset_free(&rows);
            return -1;
        }
        row_filter f = {k, 0, 1, 2, NULL, r->bad, err, 0};
        for (size_t i = 0; i < rows.nrows && !f.failed; i++) {
            db_value id = rowset_get(&rows, i, 0);
            long pi = project_index(&r->projects, id);
            if (pi < 0) continue; /* an object of no listed project: stock skips it too */
            db_value proto = rowset_get(&rows, i, 2);
            if (!row_ok(&rows, i, &f)) continue;
            buf stamp = {0};
            int rv = pb_project_stamp(k, id.p, id.n, &stamp);
            /* tag, length (row + stamp), row bytes, stamp */
            if (rv == 0)
                rv = buf_varint(&r->per_project[pi], ((uint64_t)kind_of(k)->reg_field << 3) | 2);
            if (rv == 0) rv = buf_varint(&r->per_project[pi], proto.n + stamp.n);
            if (rv == 0) rv = buf_put(&r->per_project[pi], proto.p, proto.n);
            if (rv == 0) rv = buf_put(&r->per_project[pi], stamp.p, stamp.n);
            buf_free(&stamp);
            if (rv != 0) {
                rowset_free(&rows);
                goto oom;
            }
        }
        rowset_free(&rows);
        if (f.failed) return -1;
        for (size_t i = 0; i < np; i++) {
            if (buf_put(r->out, r->per_project[i].p, r->per_project[i].n) != 0) goto oom;
            r->per_project[i].n = 0;
        }
    }

    /* Feast keeps one infra field: stock sets it from each project in turn,
     * so the last project's infra (or an empty one) is what remains. */
    db_value last = rowset_get(&r->projects, np - 1, 0);
    rowset infra = {0};
    db_value key[2] = {txtz("infra_obj"), last};
    if (exec(d, c, st->sql[OBJ_INFRA].get, key, 2, &infra, NULL, err) != 0) {
        rowset_free(&infra);
        return -1;
    }
    /* (proto, name, project_id) */
    row_filter inf = {OBJ_INFRA, 2, 1, 0, NULL, r->bad, err, 0};
    db_value iv =
        infra.nrows && row_ok(&infra, 0, &inf) ? rowset_get(&infra, 0, 0) : db_blob("", 0);
    if (inf.failed) {
        rowset_free(&infra);
        return -1;
    }
    int rv = buf_ld_field(r->out, kind_of(OBJ_INFRA)->reg_field, iv.p, iv.n);
    rowset_free(&infra);
    if (rv != 0) goto oom;

    /* last_updated: the latest project update (google.protobuf.Timestamp). */
    buf ts = {0};
    rv = 0;
    if (latest.seconds) rv = buf_varint(&ts, 1 << 3) || buf_varint(&ts, (uint64_t)latest.seconds);
    if (rv == 0 && latest.nanos)
        rv = buf_varint(&ts, 2 << 3) || buf_varint(&ts, (uint64_t)latest.nanos);
    if (rv == 0) rv = buf_ld_field(r->out, 5, ts.p ? ts.p : (const uint8_t *)"", ts.n);
    buf_free(&ts);
    if (rv != 0) goto oom;
    return 0;
oom:
    db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory assembling the registry");
    return -1;
}

int store_registry(store *st, buf *out, rowset *bad, db_err *err) {
    registry_ctx r = {out, {0}, NULL, bad};
    out->n = 0;
    memset(bad, 0, sizeof(*bad));
    int rv = run(st, READ_TXN, registry_fn, &r, err);
    if (rv != 0) rowset_free(bad);
    if (r.per_project)
        for (size_t i = 0; i < r.projects.nrows; i++)
            buf_free(&r.per_project[i]);
    free(r.per_project);
    rowset_free(&r.projects);
    return rv;
}
