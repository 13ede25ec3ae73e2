/* rowcheck.c - checks on stored rows before they are returned: exact keys
 * whatever the collation, and bad rows (see store.h). */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/kinds.h"
#include "pb/pb.h"

/* The bytes of a TEXT/BLOB value for "%.*s" (never NULL). */
const char *vstr(db_value v) {
    return (v.type == DB_TEXT || v.type == DB_BLOB) && v.p ? (const char *)v.p : "";
}

static int same_bytes(db_value v, sref s) {
    return (v.type == DB_TEXT || v.type == DB_BLOB) && v.n == s.n && memcmp(v.p, s.p, s.n) == 0;
}

/* 0 when a stored proto value can enter the registry, else -1 with why
 * filled: NULL, a value of another type (SQLite keeps whatever it is given),
 * or bytes Feast could not parse. Without this, the registry's project
 * stamp could complete a truncated row into an object with no name. */
int check_proto(obj_kind k, db_value v, char *why, size_t len) {
    if (v.type == DB_NULL) {
        snprintf(why, len, "the stored proto is NULL");
        return -1;
    }
    if (v.type != DB_BLOB) {
        snprintf(why, len, "the stored proto is %s, not bytes",
                 v.type == DB_INT ? "an integer" : "text");
        return -1;
    }
    if (k == OBJ_INFRA && v.n == 0) return 0; /* an empty Infra serializes to nothing */
    return pb_validate(k, v.p, v.n, why, len);
}

/* Names a bad row in err: "<table> row '<name>' in project '<project>': why". */
void bad_row_err(db_err *err, obj_kind k, db_value project, db_value name, const char *why) {
    db_err_set(err, DB_ERR_DATA, 0, NULL, "%s row '%.*s' in project '%.*s': %s", kind_of(k)->table,
               (int)name.n, vstr(name), (int)project.n, vstr(project), why);
}

/* Appends (table, project, name, why) to bad, the rows left out of a list
 * or of the registry so that the caller can say so. */
static int add_bad(rowset *bad, obj_kind k, db_value project, db_value name, const char *why,
                   db_err *err) {
    if (!bad) return 0;
    db_value row[4] = {txtz(kind_of(k)->table), project, name, txtz(why)};
    for (int i = 1; i < 3; i++)
        if (row[i].type != DB_TEXT && row[i].type != DB_BLOB) row[i] = db_text("", 0);
    return rowset_add(bad, row, 4, err);
}

/* Keeps the rows of rs whose key columns hold exactly these bytes: a
 * case- or accent-insensitive collation (MariaDB's utf8mb4_general_ci)
 * matches 'Driver' for 'driver', and that row is not the one asked for. */
void keep_rows(rowset *rs, int (*keep)(const rowset *, size_t, const void *), const void *arg) {
    size_t n = 0;
    for (size_t r = 0; r < rs->nrows; r++)
        if (keep(rs, r, arg)) {
            if (n != r)
                memmove(rs->v + n * (size_t)rs->ncols, rs->v + r * (size_t)rs->ncols,
                        sizeof(db_value) * (size_t)rs->ncols);
            n++;
        }
    rs->nrows = n;
}

/* Rows of (proto, name, project_id). */
int is_exact(const rowset *rs, size_t r, const void *arg) {
    const exact_key *key = arg;
    return same_bytes(rowset_get(rs, r, 1), key->name) &&
           same_bytes(rowset_get(rs, r, 2), key->project);
}

int row_ok(const rowset *rs, size_t r, const void *arg) {
    row_filter *f = (row_filter *)arg;
    db_value project = rowset_get(rs, r, f->project_col);
    char why[256];
    if (f->project && !same_bytes(project, *f->project)) return 0;
    if (check_proto(f->k, rowset_get(rs, r, f->proto_col), why, sizeof(why)) == 0) return 1;
    if (add_bad(f->bad, f->k, project, rowset_get(rs, r, f->name_col), why, f->err) != 0)
        f->failed = 1;
    return 0;
}

/* Keeps the rows of out that pass f; returns -1 (both freed) when
 * recording a bad row ran out of memory. */
int filtered(rowset *out, rowset *bad, row_filter *f) {
    keep_rows(out, row_ok, f);
    if (!f->failed) return 0;
    rowset_free(out);
    rowset_free(bad);
    return -1;
}
