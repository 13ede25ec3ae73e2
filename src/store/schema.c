/* schema.c - Feast's tables: creating what is missing, and the checks on
 * an existing schema (missing tables, proto columns too narrow). */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#define OBJECT_TABLE(t, namecol, protocol)                                                         \
    {                                                                                              \
        t, "idx_" t "_project_id", namecol ", project_id", {                                       \
            {namecol, T_NAME, 1}, {"project_id", T_NAME, 1},                                       \
                {"last_updated_timestamp", T_BIGINT, 1}, {                                         \
                protocol, T_BLOB, 1                                                                \
            }                                                                                      \
        }                                                                                          \
    }
#define VIEW_TABLE(t)                                                                              \
    {                                                                                              \
        t, "idx_" t "_project_id", "feature_view_name, project_id", {                              \
            {"feature_view_name", T_NAME, 1}, {"project_id", T_NAME, 1},                           \
                {"last_updated_timestamp", T_BIGINT, 1}, {"feature_view_proto", T_BLOB, 1}, {      \
                "user_metadata", T_BLOB, 0                                                         \
            }                                                                                      \
        }                                                                                          \
    }

const tabledef SCHEMA[] = {
    {"projects",
     "idx_projects_project_id",
     "project_id",
     {{"project_id", T_NAME, 1},
      {"project_name", T_NAME, 1},
      {"last_updated_timestamp", T_BIGINT, 1},
      {"project_proto", T_BLOB, 1}}},
    OBJECT_TABLE("entities", "entity_name", "entity_proto"),
    OBJECT_TABLE("data_sources", "data_source_name", "data_source_proto"),
    {"feature_views",
     "idx_feature_views_project_id",
     "feature_view_name, project_id",
     {{"feature_view_name", T_NAME, 1},
      {"project_id", T_NAME, 1},
      {"last_updated_timestamp", T_BIGINT, 1},
      {"materialized_intervals", T_BLOB, 0},
      {"feature_view_proto", T_BLOB, 1},
      {"user_metadata", T_BLOB, 0}}},
    VIEW_TABLE("stream_feature_views"),
    VIEW_TABLE("on_demand_feature_views"),
    VIEW_TABLE("label_views"),
    OBJECT_TABLE("feature_services", "feature_service_name", "feature_service_proto"),
    OBJECT_TABLE("saved_datasets", "saved_dataset_name", "saved_dataset_proto"),
    OBJECT_TABLE("validation_references", "validation_reference_name",
                 "validation_reference_proto"),
    OBJECT_TABLE("managed_infra", "infra_name", "infra_proto"),
    OBJECT_TABLE("permissions", "permission_name", "permission_proto"),
    {"feature_view_version_history",
     "idx_fv_version_history_project_id",
     "feature_view_name, project_id, version_number",
     {{"feature_view_name", T_NAME, 1},
      {"project_id", T_NAME, 1},
      {"version_number", T_INT, 1},
      {"feature_view_type", T_KEY50, 1},
      {"feature_view_proto", T_BLOB, 1},
      {"created_timestamp", T_BIGINT, 1},
      {"description", T_TEXT, 0},
      {"version_id", T_UUID, 1}}},
    {"feast_metadata",
     "idx_feast_metadata_project_id",
     "project_id, metadata_key",
     {{"project_id", T_NAME, 1},
      {"metadata_key", T_KEY50, 1},
      {"metadata_value", T_TEXT, 1},
      {"last_updated_timestamp", T_BIGINT, 1}}},
};
const size_t NSCHEMA = sizeof(SCHEMA) / sizeof(SCHEMA[0]);

static const char *ddl_type(const db_sql_dialect *d, int type) {
    switch (type) {
    case T_NAME:
        return "VARCHAR(255)";
    case T_KEY50:
        return "VARCHAR(50)";
    case T_UUID:
        return "VARCHAR(36)";
    case T_BIGINT:
        return "BIGINT";
    case T_INT:
        return "INTEGER";
    case T_TEXT:
        return "TEXT";
    default:
        return d->blob_type;
    }
}

/* CREATE TABLE IF NOT EXISTS t, with its index where the dialect declares
 * indexes inside the table. */
static int create_table(store *st, const db_driver *d, db_conn *c, const tabledef *t, db_err *err) {
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s (", t->table);
    for (int j = 0; t->cols[j].name; j++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s %s%s, ", t->cols[j].name,
                              ddl_type(st->dialect, t->cols[j].type),
                              t->cols[j].notnull ? " NOT NULL" : "");
    n += (size_t)snprintf(sql + n, sizeof(sql) - n, "PRIMARY KEY (%s)", t->pk);
    /* No CREATE INDEX IF NOT EXISTS there: declare it with the table. */
    if (st->dialect->index_in_table)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", INDEX %s (project_id)", t->index);
    snprintf(sql + n, sizeof(sql) - n, ")");
    return exec(d, c, sql, NULL, 0, NULL, NULL, err);
}

/* Creates what is missing, and only that: on a registry that has its
 * schema, no DDL runs at all, so a registry starting up (schema_mode: auto,
 * every replica) never queues behind other processes' open writes for the
 * locks DDL takes even when it turns out to have nothing to do. */
static int create_schema_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    (void)ctx;
    char sql[2048];
    int created = 0;
    rowset tables = {0}, indexes = {0};
    int rv = exec(d, c, st->dialect->tables_query, NULL, 0, &tables, NULL, err);
    if (rv == 0 && st->dialect->indexes_query)
        rv = exec(d, c, st->dialect->indexes_query, NULL, 0, &indexes, NULL, err);
    for (size_t i = 0; rv == 0 && i < NSCHEMA; i++) {
        const tabledef *t = &SCHEMA[i];
        int have_table = has_name(&tables, t->table);
        int have_index = st->dialect->index_in_table  ? have_table
                         : st->dialect->indexes_query ? has_name(&indexes, t->index)
                                                      : 0;
        if (have_table && have_index) continue;
        created = 1;
        if (!have_table) rv = create_table(st, d, c, t, err);
        if (rv == 0 && !st->dialect->index_in_table) {
            snprintf(sql, sizeof(sql), "CREATE INDEX IF NOT EXISTS %s ON %s (project_id)", t->index,
                     t->table);
            rv = exec(d, c, sql, NULL, 0, NULL, NULL, err);
        }
    }
    rowset_free(&tables);
    rowset_free(&indexes);
    if (rv == 0 && created) note_ddl(st, d, c);
    return rv;
}

int store_create_schema(store *st, db_err *err) {
    /* PostgreSQL runs DDL in transactions; the others commit it implicitly. */
    return run(st, st->dialect->ddl_in_transaction ? WRITE_TXN : PRIMARY_READ, create_schema_fn,
               NULL, err);
}

static int tables_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    return exec(d, c, st->dialect->tables_query, NULL, 0, ctx, NULL, err);
}

int store_missing_tables(store *st, int read, rowset *out, db_err *err) {
    rowset have = {0};
    int rv = run(st, read ? NO_TXN : PRIMARY_READ, tables_fn, &have, err);
    if (rv != 0) {
        rowset_free(&have);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < NSCHEMA && rv == 0; i++) {
        int found = 0;
        for (size_t r = 0; r < have.nrows && !found; r++) {
            db_value v = rowset_get(&have, r, 0);
            found = v.n == strlen(SCHEMA[i].table) && memcmp(v.p, SCHEMA[i].table, v.n) == 0;
        }
        if (!found) {
            db_value name = txtz(SCHEMA[i].table);
            rv = rowset_add(out, &name, 1, err);
        }
    }
    rowset_free(&have);
    return rv;
}

static int narrow_fn(store *st, const db_driver *d, db_conn *c, void *ctx, db_err *err) {
    return exec(d, c, st->dialect->narrow_blob_query, NULL, 0, ctx, NULL, err);
}

/* Whether (table, column) is a proto column of the registry's schema. */
static int is_blob_column(db_value table, db_value column) {
    for (size_t i = 0; i < NSCHEMA; i++) {
        if (table.n != strlen(SCHEMA[i].table) || memcmp(table.p, SCHEMA[i].table, table.n))
            continue;
        for (const coldef *col = SCHEMA[i].cols; col->name; col++)
            if (col->type == T_BLOB && column.n == strlen(col->name) &&
                memcmp(column.p, col->name, column.n) == 0)
                return 1;
    }
    return 0;
}

int store_narrow_blob_columns(store *st, int read, rowset *out, db_err *err) {
    memset(out, 0, sizeof(*out));
    if (!st->dialect->narrow_blob_query) return 0;
    rowset all = {0};
    int rv = run(st, read ? NO_TXN : PRIMARY_READ, narrow_fn, &all, err);
    for (size_t r = 0; rv == 0 && r < all.nrows; r++) {
        db_value cols[2] = {rowset_get(&all, r, 0), rowset_get(&all, r, 1)};
        if (cols[0].type == DB_TEXT && cols[1].type == DB_TEXT && is_blob_column(cols[0], cols[1]))
            rv = rowset_add(out, cols, 2, err);
    }
    rowset_free(&all);
    return rv;
}
