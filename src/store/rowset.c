/* rowset.c - result rows copied out of the driver (rowset in store.h). */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

void rowset_free(rowset *rs) {
    free(rs->v);
    buf_free(&rs->arena);
    memset(rs, 0, sizeof(*rs));
}

db_value rowset_get(const rowset *rs, size_t r, int c) {
    db_value v = rs->v[r * (size_t)rs->ncols + (size_t)c];
    if (v.type == DB_TEXT || v.type == DB_BLOB) v.p = rs->arena.p + v.i;
    return v;
}

int rowset_add(void *ctx, const db_value *cols, int ncols, db_err *err) {
    rowset *rs = ctx;
    if (rs->nrows == 0 && rs->cap == 0) rs->ncols = ncols;
    if (ncols != rs->ncols) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL, "rows of different widths");
        return -1;
    }
    if (rs->nrows == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 8;
        db_value *v = realloc(rs->v, cap * (size_t)ncols * sizeof(*v));
        if (!v) goto oom;
        rs->v = v;
        rs->cap = cap;
    }
    db_value *row = rs->v + rs->nrows * (size_t)ncols;
    for (int i = 0; i < ncols; i++) {
        row[i] = cols[i];
        if (cols[i].type == DB_TEXT || cols[i].type == DB_BLOB) {
            row[i].i = (int64_t)rs->arena.n;
            row[i].p = NULL;
            if (buf_put(&rs->arena, cols[i].p, cols[i].n) != 0) goto oom;
        }
    }
    rs->nrows++;
    return 0;
oom:
    db_err_set(err, DB_ERR_NOMEM, 0, NULL, "out of memory reading registry rows");
    return -1;
}

int has_name(const rowset *names, const char *name) {
    for (size_t r = 0; r < names->nrows; r++) {
        db_value v = rowset_get(names, r, 0);
        if ((v.type == DB_TEXT || v.type == DB_BLOB) && v.n == strlen(name) &&
            memcmp(v.p, name, v.n) == 0)
            return 1;
    }
    return 0;
}
