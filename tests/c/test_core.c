/* test_core.c - the C layers below Python (url, pb, store on SQLite, the
 * driver registry), run without Python under AddressSanitizer and
 * UndefinedBehaviorSanitizer by `make test`. Each CHECK counts; the last
 * line is "core: N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/url.h"
#include "feast_subset.pb-c.h"
#include "pb/pb.h"
#include "store/store.h"

#include "check.h"

static int streq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static void test_urls(void) {
    db_url u;
    char err[256], shown[256];
    CHECK(url_parse("postgresql+psycopg://al%40ice:p%40ss%3Aw@db.example:6543/reg?sslmode=require&"
                    "connect_timeout=5",
                    &u, err, sizeof(err)) == 0);
    CHECK(streq(u.scheme, "postgresql") && streq(u.driver, "psycopg"));
    CHECK(streq(u.user, "al@ice") && streq(u.password, "p@ss:w"));
    CHECK(streq(u.host, "db.example") && u.port == 6543 && streq(u.database, "reg"));
    CHECK(streq(url_query(&u, "sslmode"), "require") &&
          streq(url_query(&u, "connect_timeout"), "5"));
    url_redacted(&u, shown, sizeof(shown));
    CHECK(strstr(shown, "p@ss") == NULL && strstr(shown, "***") != NULL);
    CHECK(streq(shown, "postgresql+psycopg://al%40ice:***@db.example:6543/reg"));
    url_free(&u);

    CHECK(url_parse("mysql://root@[::1]:3306/x", &u, err, sizeof(err)) == 0);
    CHECK(streq(u.host, "::1") && u.port == 3306 && u.password == NULL);
    url_free(&u);

    CHECK(url_parse("sqlite:///rel/r.db", &u, err, sizeof(err)) == 0 &&
          streq(u.database, "rel/r.db"));
    url_free(&u);
    CHECK(url_parse("sqlite:////abs/r.db", &u, err, sizeof(err)) == 0 &&
          streq(u.database, "/abs/r.db"));
    url_free(&u);
    CHECK(url_parse("sqlite://", &u, err, sizeof(err)) == 0 && url_is_sqlite_memory(&u));
    url_free(&u);

    const char *bad[] = {"nonsense",
                         "://x",
                         "postgresql://u@h:0/db",
                         "postgresql://u@h:x/db",
                         "postgresql://u:%zz@h/db",
                         "sqlite://host/x.db",
                         "mysql://u@[::1/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK(url_parse(bad[i], &u, err, sizeof(err)) == -1 && err[0] != 0);
    }
    CHECK(url_parse("postgresql://u:s3cret%zz@h/db", &u, err, sizeof(err)) == -1);
    CHECK(strstr(err, "s3cret") == NULL);
}

/* A serialized feature view: spec bytes, created, intervals, plus an
 * unknown field 99 in meta that must survive every edit. */
static void feature_view_bytes(int64_t created, int nintervals, buf *out) {
    FeastSqlreg__Timestamp c = FEAST_SQLREG__TIMESTAMP__INIT;
    FeastSqlreg__Timestamp ts[8];
    FeastSqlreg__MaterializationInterval iv[4], *ivp[4];
    FeastSqlreg__FeatureViewMeta meta = FEAST_SQLREG__FEATURE_VIEW_META__INIT;
    FeastSqlreg__FeatureViewObject fv = FEAST_SQLREG__FEATURE_VIEW_OBJECT__INIT;
    c.seconds = created;
    meta.created_timestamp = created ? &c : NULL;
    for (int i = 0; i < nintervals; i++) {
        feast_sqlreg__timestamp__init(&ts[2 * i]);
        feast_sqlreg__timestamp__init(&ts[2 * i + 1]);
        ts[2 * i].seconds = 1000 * (i + 1);
        ts[2 * i + 1].seconds = 1000 * (i + 1) + 500;
        feast_sqlreg__materialization_interval__init(&iv[i]);
        iv[i].start_time = &ts[2 * i];
        iv[i].end_time = &ts[2 * i + 1];
        ivp[i] = &iv[i];
    }
    meta.n_materialization_intervals = (size_t)nintervals;
    meta.materialization_intervals = ivp;
    static const uint8_t spec[] = {0x0a, 0x02, 'f', 'v'}; /* name = "fv" */
    fv.spec.data = (uint8_t *)spec;
    fv.spec.len = sizeof(spec);
    fv.meta = &meta;
    size_t n = feast_sqlreg__feature_view_object__get_packed_size(&fv);
    buf_reserve(out, n);
    out->n += feast_sqlreg__feature_view_object__pack(&fv, out->p + out->n);
}

static FeastSqlreg__FeatureViewObject *parse_fv(const buf *b) {
    return feast_sqlreg__feature_view_object__unpack(NULL, b->n, b->p);
}

static void test_pb(void) {
    char err[256];
    buf stored = {0}, fresh = {0}, merged = {0}, edited = {0};
    feature_view_bytes(111, 2, &stored);
    feature_view_bytes(999, 0, &fresh);
    /* An unknown top-level field (number 99, varint 7) must pass through. */
    const uint8_t unknown[] = {0x98, 0x06, 0x07};
    buf_put(&fresh, unknown, sizeof(unknown));

    CHECK(pb_merge_for_update(OBJ_FEATURE_VIEW, fresh.p, fresh.n, stored.p, stored.n, &merged, err,
                              sizeof(err)) == 0);
    FeastSqlreg__FeatureViewObject *m = parse_fv(&merged);
    CHECK(m != NULL);
    if (m) {
        CHECK(m->meta->created_timestamp->seconds == 111); /* stored created kept */
        CHECK(m->meta->n_materialization_intervals == 2);  /* stored intervals kept */
        CHECK(m->base.n_unknown_fields == 1 && m->base.unknown_fields[0].tag == 99);
        CHECK(m->spec.len == 4 && memcmp(m->spec.data,
                                         "\x0a\x02"
                                         "fv",
                                         4) == 0);
        feast_sqlreg__feature_view_object__free_unpacked(m, NULL);
    }

    CHECK(pb_append_interval(OBJ_FEATURE_VIEW, merged.p, merged.n, (pb_ts){5000, 0},
                             (pb_ts){6000, 7}, (pb_ts){7777, 0}, &edited, err, sizeof(err)) == 0);
    m = parse_fv(&edited);
    CHECK(m != NULL);
    if (m) {
        CHECK(m->meta->n_materialization_intervals == 3);
        CHECK(m->meta->materialization_intervals[2]->end_time->nanos == 7);
        CHECK(m->meta->state == 4 && m->meta->last_updated_timestamp->seconds == 7777);
        CHECK(m->base.n_unknown_fields == 1);
        feast_sqlreg__feature_view_object__free_unpacked(m, NULL);
    }

    /* A stale copy carrying some intervals cannot drop stored ones. */
    buf stale = {0}, merged2 = {0};
    feature_view_bytes(5, 1, &stale);
    CHECK(pb_merge_for_update(OBJ_FEATURE_VIEW, stale.p, stale.n, edited.p, edited.n, &merged2, err,
                              sizeof(err)) == 0);
    m = parse_fv(&merged2);
    CHECK(m && m->meta->n_materialization_intervals == 3);
    if (m) feast_sqlreg__feature_view_object__free_unpacked(m, NULL);

    /* Garbage is an error that names the kind, not a crash. */
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    buf out = {0};
    CHECK(pb_merge_for_update(OBJ_ENTITY, fresh.p, fresh.n, garbage, sizeof(garbage), &out, err,
                              sizeof(err)) == -1);
    CHECK(strstr(err, "stored entity") != NULL);
    CHECK(pb_append_interval(OBJ_FEATURE_VIEW, garbage, sizeof(garbage), (pb_ts){0, 0},
                             (pb_ts){0, 0}, (pb_ts){0, 0}, &out, err, sizeof(err)) == -1);
    CHECK(pb_append_interval(OBJ_ENTITY, fresh.p, fresh.n, (pb_ts){0, 0}, (pb_ts){0, 0},
                             (pb_ts){0, 0}, &out, err, sizeof(err)) == -1);

    /* The project stamp is spec { project: P } for spec kinds. */
    buf stamp = {0};
    CHECK(pb_project_stamp(OBJ_FEATURE_VIEW, "p1", 2, &stamp) == 0);
    CHECK(stamp.n == 6 && memcmp(stamp.p, "\x0a\x04\x12\x02p1", 6) == 0);
    stamp.n = 0;
    CHECK(pb_project_stamp(OBJ_DATA_SOURCE, "p1", 2, &stamp) == 0);
    CHECK(stamp.n == 5 && memcmp(stamp.p, "\xaa\x01\x02p1", 5) == 0);

    buf_free(&stored);
    buf_free(&fresh);
    buf_free(&merged);
    buf_free(&edited);
    buf_free(&stale);
    buf_free(&merged2);
    buf_free(&out);
    buf_free(&stamp);
}

static sref S(const char *s) {
    sref r = {s, strlen(s)};
    return r;
}

/* pb_read_request: what decides whether the front may answer a gRPC call
 * itself. The fields of a Get request as Feast numbers them: name 1,
 * project 2, allow_cache 3. */
static int read_get(const char *msg, size_t n, pb_req_field f[3]) {
    f[0] = (pb_req_field){1, PB_REQ_STRING, 0, NULL, 0, 0};
    f[1] = (pb_req_field){2, PB_REQ_STRING, 0, NULL, 0, 0};
    f[2] = (pb_req_field){3, PB_REQ_BOOL, 0, NULL, 0, 0};
    return pb_read_request((const uint8_t *)msg, n, f, 3);
}

static int is(const pb_req_field *f, const char *want) {
    return f->n == strlen(want) && memcmp(f->p, want, f->n) == 0;
}

static void test_pb_request(void) {
    pb_req_field f[3];
#define READ(lit) read_get((lit), sizeof(lit) - 1, f)
    CHECK(READ("\x0a\x02"
               "fv\x12\x01p\x18\x01") == 0);
    CHECK(is(&f[0], "fv") && is(&f[1], "p") && f[2].value == 1);
    CHECK(f[0].present && f[1].present && f[2].present);
    /* Empty: every field at its default, none present. */
    CHECK(READ("") == 0);
    CHECK(is(&f[0], "") && is(&f[1], "") && f[2].value == 0 && !f[0].present && !f[2].present);
    /* Any order; a bool is any non-zero varint, 10 bytes long at most. */
    CHECK(READ("\x18\x80\x01\x12\x01p") == 0 && f[2].value == 1 && is(&f[1], "p"));
    CHECK(READ("\x18\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01") == 0 && f[2].value == 1);
    CHECK(READ("\x18\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01") == -1);
    /* Repeated: the last occurrence wins, as protobuf's parsers have it. */
    CHECK(READ("\x0a\x01"
               "a\x0a\x01"
               "b\x18\x01\x18\x00") == 0);
    CHECK(is(&f[0], "b") && f[2].value == 0 && f[2].present);
    /* A field the caller did not name: not ours to read. */
    CHECK(READ("\x0a\x02"
               "fv\x20\x01") == -1);
    CHECK(READ("\x22\x00") == -1);
    CHECK(READ("\xfa\xff\xff\xff\x0f\x00") == -1); /* field 2^29 - 1 */
    /* A named field with another wire type than its declared one. */
    CHECK(READ("\x08\x01") == -1);             /* name as a varint */
    CHECK(READ("\x1a\x01\x01") == -1);         /* allow_cache length-delimited */
    CHECK(READ("\x0d\x00\x00\x00\x00") == -1); /* fixed32 */
    CHECK(READ("\x0b\x0c") == -1);             /* a group */
    CHECK(READ("\x0a\x01"
               "a\x08\x01") == -1); /* the second name a varint */
    /* Malformed: truncated, past the end, field 0, overlong or long tags. */
    CHECK(READ("\x0a") == -1);
    CHECK(READ("\x0a\x03"
               "fv") == -1);
    CHECK(READ("\x0a\xff\xff\xff\xff\x0f") == -1);
    CHECK(READ("\x18") == -1);
    CHECK(READ("\x18\x80") == -1);
    CHECK(READ("\x00\x00") == -1);
    CHECK(READ("\x80\x00") == -1);                     /* field 0, overlong */
    CHECK(READ("\x8a\x00\x00") == -1);                 /* field 1, overlong tag */
    CHECK(READ("\x8a\x80\x80\x80\x80\x00\x00") == -1); /* a 6-byte tag */
    /* A string that is not UTF-8: Feast's parser rejects the message. */
    CHECK(READ("\x0a\x02\xc3\x28") == -1);
    CHECK(READ("\x12\x02\xc0\x80") == -1);
    CHECK(READ("\x0a\x04\xf0\x9f\x99\x82") == 0 && f[0].n == 4);
#undef READ
    /* A message without a project: field 0 matches nothing. */
    pb_req_field g[2] = {{1, PB_REQ_STRING, 0, NULL, 0, 0}, {0, PB_REQ_STRING, 0, NULL, 0, 0}};
    CHECK(pb_read_request((const uint8_t *)"\x0a\x01n", 3, g, 2) == 0 && is(&g[0], "n"));
    CHECK(pb_read_request((const uint8_t *)"\x12\x01p", 3, g, 2) == -1);
    CHECK(pb_read_request(NULL, 0, NULL, 0) == 0);
}

static void test_store_sqlite(void) {
    db_err err;
    pool_opts opts = {1, 0, 5.0, -1.0, 1};
    store *st = store_open("sqlite://", NULL, &opts, &err);
    CHECK(st != NULL);
    if (!st) return;
    rowset rs;
    CHECK(store_create_schema(st, &err) == 0);
    CHECK(store_missing_tables(st, 0, &rs, &err) == 0 && rs.nrows == 0);
    rowset_free(&rs);

    buf fv = {0};
    feature_view_bytes(42, 0, &fv);
    sref proto = {(const char *)fv.p, fv.n};
    write_ctx w = {.now = 100,
                   .project_proto = S("\x0a\x03\x0a\x01p"),
                   .project_uuid = S("uuid-1"),
                   .touch_metadata = 1};
    int inserted = -1, found = -1;
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), proto, &w, &inserted, NULL, &err) == 0);
    CHECK(inserted == 1);
    CHECK(store_apply_materialization(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), (pb_ts){1, 0},
                                      (pb_ts){2, 0}, (pb_ts){101, 0}, &w, &found, &err) == 0);
    CHECK(found == 1);
    CHECK(store_apply_materialization(st, OBJ_FEATURE_VIEW, S("p"), S("nope"), (pb_ts){1, 0},
                                      (pb_ts){2, 0}, (pb_ts){101, 0}, &w, &found, &err) == 0);
    CHECK(found == 0);
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), proto, &w, &inserted, NULL, &err) == 0);
    CHECK(inserted == 0);
    CHECK(store_get(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), 0, &rs, &err) == 0 && rs.nrows == 1);
    if (rs.nrows == 1) {
        db_value v = rowset_get(&rs, 0, 0);
        FeastSqlreg__FeatureViewObject *m =
            feast_sqlreg__feature_view_object__unpack(NULL, v.n, v.p);
        CHECK(m && m->meta->n_materialization_intervals == 1); /* re-apply kept it */
        if (m) feast_sqlreg__feature_view_object__free_unpacked(m, NULL);
    }
    rowset_free(&rs);
    CHECK(store_meta_get(st, S("p"), S("project_uuid"), &rs, &err) == 0 && rs.nrows == 1);
    rowset_free(&rs);

    buf reg = {0};
    rowset bad;
    CHECK(store_registry(st, &reg, &bad, &err) == 0 && reg.n > fv.n && bad.nrows == 0);
    buf_free(&reg);
    rowset_free(&bad);

    CHECK(store_version_save(st, S("p"), S("fv"), 0, S("feature_view"), proto, 1, S("v0"), &err) ==
          0);
    CHECK(store_version_save(st, S("p"), S("fv"), 0, S("feature_view"), proto, 1, S("v0"), &err) ==
          -1);
    CHECK(err.kind == DB_ERR_DUPLICATE);
    int64_t next = -1;
    CHECK(store_version_next(st, S("p"), S("fv"), &next, &err) == 0 && next == 1);

    /* The apply's one read, and its write over what it read. */
    obj_kind rivals[3] = {OBJ_STREAM_FEATURE_VIEW, OBJ_ON_DEMAND_FEATURE_VIEW, OBJ_LABEL_VIEW};
    int taken = -2, has_project = -1, raced = -1;
    CHECK(store_read_for_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), rivals, 3, 1, &rs, &taken,
                               &next, &has_project, &err) == 0);
    CHECK(rs.nrows == 1 && taken == -1 && next == 1 && has_project == 3);
    buf stored = {0};
    if (rs.nrows == 1) {
        db_value v = rowset_get(&rs, 0, 0);
        CHECK(buf_put(&stored, v.p, v.n) == 0);
    }
    rowset_free(&rs);
    CHECK(store_apply(st, OBJ_STREAM_FEATURE_VIEW, S("p"), S("fv"), proto, &w, &inserted, NULL,
                      &err) == 0);
    CHECK(store_read_for_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), rivals, 3, 0, &rs, &taken,
                               &next, &has_project, &err) == 0);
    CHECK(rs.nrows == 1 && taken == 0 && next == 0);
    rowset_free(&rs);
    CHECK(store_read_for_apply(st, OBJ_FEATURE_VIEW, S("q"), S("fv"), rivals, 3, 1, &rs, &taken,
                               &next, &has_project, &err) == 0);
    CHECK(rs.nrows == 0 && taken == -1 && next == 0 && has_project == 0);
    rowset_free(&rs);
    write_ctx wx = w;
    wx.expect_set = 1;
    wx.expect = (sref){(const char *)fv.p, fv.n}; /* not the stored bytes: intervals were merged */
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), proto, &wx, &inserted, &raced,
                      &err) == 0);
    CHECK(raced == 1 && inserted == 0);
    wx.expect = (sref){(const char *)stored.p, stored.n};
    wx.version_type = S("feature_view");
    wx.version_id = S("v1");
    wx.version_number = 1;
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), proto, &wx, &inserted, &raced,
                      &err) == 0);
    CHECK(raced == 0 && inserted == 0);
    CHECK(store_version_next(st, S("p"), S("fv"), &next, &err) == 0 && next == 2);
    /* The same number again: taken, rolled back, reported as a race. */
    CHECK(store_get(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), 1, &rs, &err) == 0 && rs.nrows == 1);
    buf_free(&stored);
    if (rs.nrows == 1) {
        db_value v = rowset_get(&rs, 0, 0);
        CHECK(buf_put(&stored, v.p, v.n) == 0);
    }
    rowset_free(&rs);
    wx.expect = (sref){(const char *)stored.p, stored.n};
    CHECK(store_apply(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), proto, &wx, &inserted, &raced,
                      &err) == 0);
    CHECK(raced == 1);
    CHECK(store_get(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), 1, &rs, &err) == 0 && rs.nrows == 1);
    if (rs.nrows == 1) {
        db_value v = rowset_get(&rs, 0, 0);
        CHECK(v.n == stored.n && memcmp(v.p, stored.p, v.n) == 0); /* nothing written */
    }
    rowset_free(&rs);
    buf_free(&stored);

    int64_t deleted = 0;
    /* Every kind of view of that name: the feature view and the stream one. */
    CHECK(store_delete_feature_view(st, S("p"), S("fv"), &w, &deleted, &err) == 0 && deleted == 2);
    CHECK(store_get(st, OBJ_FEATURE_VIEW, S("p"), S("fv"), 0, &rs, &err) == 0 && rs.nrows == 0);
    rowset_free(&rs);
    buf_free(&fv);
    /* Nothing was run again on SQLite's one connection, which is idle now;
     * there is no read pool of its own. */
    store_stats ss;
    store_stats_get(st, &ss);
    CHECK(ss.conflict_retries == 0 && ss.replans == 0 && ss.reconnects == 0);
    CHECK(ss.write_pool.capacity == 1 && ss.write_pool.in_use == 0 && ss.write_pool.idle == 1);
    CHECK(ss.write_pool.connects == 1 && ss.write_pool.waits == 0);
    CHECK(!ss.has_read_pool && ss.read_pool.connects == ss.write_pool.connects);
    store_close(st);

    CHECK(store_open("oracle://u:secret@h/x", NULL, &opts, &err) == NULL);
    CHECK(err.kind == DB_ERR_CONFIG && strstr(err.msg, "secret") == NULL);
}

/* The driver registry (db.c): SQLite is built in; the PostgreSQL and MySQL
 * drivers (linked in here, loaded as modules of their own under Python) are
 * found only once registered, registering is idempotent, and a second
 * driver for a dialect is refused. */
static void test_driver_registry(void) {
    db_url u;
    char errbuf[256];
    db_err err;
    CHECK(db_dialect_of_url("postgresql+psycopg://u:p@h/x") == DB_POSTGRES);
    CHECK(db_dialect_of_url("mariadb+pymysql://u@h/x") == DB_MYSQL);
    CHECK(db_dialect_of_url("sqlite://") == DB_SQLITE);
    CHECK(db_dialect_of_url("oracle://u@h/x") == DB_UNKNOWN);
    CHECK(db_dialect_of_url("postgresql://u@h:x/db") == DB_UNKNOWN); /* bad port */
    CHECK(db_driver_registered(DB_SQLITE) == &db_sqlite_driver);
    CHECK(db_driver_registered(DB_POSTGRES) == NULL);
    CHECK(url_parse("postgres://u@h/x", &u, errbuf, sizeof(errbuf)) == 0);
    db_err_clear(&err);
    CHECK(db_driver_for(&u, &err) == NULL && err.kind == DB_ERR_CONFIG &&
          strstr(err.msg, "no backend for 'postgres'") != NULL);
    CHECK(db_register_driver(&db_pg_driver) == 0);
    CHECK(db_register_driver(&db_pg_driver) == 0);
    CHECK(db_driver_for(&u, &err) == &db_pg_driver);
    url_free(&u);
    CHECK(db_register_driver(&db_sqlite_driver) == -1); /* built in */
    CHECK(db_register_driver(&db_mysql_driver) == 0);
    CHECK(db_driver_registered(DB_MYSQL) == &db_mysql_driver);
    db_driver other = db_pg_driver;
    CHECK(db_register_driver(&other) == -1);
    CHECK(db_driver_registered(DB_POSTGRES) == &db_pg_driver);
}

/* MySQL error numbers to kinds. On a Galera node (wsrep) a conflict abort
 * while the server opens what a trigger uses surfaces as a syntax error in
 * the trigger's body (1064) or as its change log table missing (1146):
 * for the registry's own triggers and change log those are conflicts. */
static void test_mysql_error_kinds(void) {
    const char *our_body = "Trigger '" DB_CHANGE_TRIGGER_PREFIX
                           "feature_views_ins' has an error in its body: 'x'";
    const char *our_log = "Table 'fsr_1.feast_sqlreg_changes' doesn't exist";
    for (int wsrep = 0; wsrep <= 1; wsrep++) {
        CHECK(db_mysql_error_kind(1213, "Deadlock found when trying to get lock", wsrep) ==
              DB_ERR_BUSY);
        CHECK(db_mysql_error_kind(1062, "Duplicate entry 'x' for key 'PRIMARY'", wsrep) ==
              DB_ERR_DUPLICATE);
        CHECK(db_mysql_error_kind(1064, our_body, wsrep) ==
              (wsrep ? DB_ERR_BUSY : DB_ERR_PROGRAMMING));
        CHECK(db_mysql_error_kind(1146, our_log, wsrep) ==
              (wsrep ? DB_ERR_BUSY : DB_ERR_PROGRAMMING));
        CHECK(db_mysql_error_kind(1064, "Unknown trigger has an error in its body: 'Query was empty'",
                                  wsrep) == (wsrep ? DB_ERR_BUSY : DB_ERR_PROGRAMMING));
        /* Someone else's trigger or table, a plain syntax error, and a
         * message cut short stay programming errors. */
        CHECK(db_mysql_error_kind(1064, "Trigger 'audit_ins' has an error in its body: 'x'",
                                  wsrep) == DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1064, "You have an error in your SQL syntax; check the manual",
                                  wsrep) == DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1064, "Trigger '" DB_CHANGE_TRIGGER_PREFIX "feature_views_ins'",
                                  wsrep) == DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1064, NULL, wsrep) == DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1146, "Table 'fsr_1.feature_views' doesn't exist", wsrep) ==
              DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1146, "Table 'fsr_1.my_feast_sqlreg_changes_x' doesn't exist",
                                  wsrep) == DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1146, ".feast_sqlreg_changes' doesn't exist", wsrep) ==
              DB_ERR_PROGRAMMING);
        CHECK(db_mysql_error_kind(1205, "Lock wait timeout exceeded", wsrep) == DB_ERR_BUSY);
        CHECK(db_mysql_error_kind(2013, "Lost connection to server during query", wsrep) ==
              DB_ERR_CONNECT);
    }
}

int main(void) {
    test_urls();
    test_pb();
    test_pb_request();
    test_store_sqlite();
    test_driver_registry();
    test_mysql_error_kinds();
    return check_report("core");
}
