/* db_mysql.c - the MySQL / MariaDB backend: the only file that calls the MySQL
 * client library (MariaDB Connector/C, or Oracle's libmysqlclient).
 *
 * Statements go through the binary protocol, prepared once per connection and
 * cached by SQL text, so integer columns come back as integers and BLOB
 * columns as bytes; DDL and transaction control go through the text protocol.
 * Rows are read unbuffered, one at a time, into column buffers that grow to
 * the largest value seen (a LONGBLOB can be many MB).
 *
 * Connections are opened with CLIENT_FOUND_ROWS (an UPDATE reports the rows
 * it matched, not only those it changed) and without automatic reconnection:
 * a silent reconnect would drop the prepared statements and any open
 * transaction.
 *
 * Timeouts: connect_timeout defaults to 10 s and also bounds the handshake
 * (a server that accepts TCP and never answers); read_timeout and
 * write_timeout, when given, bound every read and write of a statement: the
 * library then drops the connection (CR_SERVER_LOST) and the pool closes it.
 */
#include <errmsg.h>
#include <limits.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"

/* MariaDB Connector/C and MySQL before 8.0 spell the client library's
 * booleans my_bool; MySQL 8.0 removed it for bool. */
#if defined(MARIADB_PACKAGE_VERSION_ID)
#define HAVE_MARIADB_CLIENT 1
typedef my_bool flag_t;
#elif MYSQL_VERSION_ID >= 80000
#include <stdbool.h>
typedef bool flag_t;
#else
typedef my_bool flag_t;
#endif

#define SMALL_VALUE 256 /* column bytes read without a second copy */

struct db_conn {
    MYSQL *my;
    int wsrep; /* a Galera node (wsrep_on) */
    int damaged; /* reported aborted_in_our_trigger: never pooled again (see node_damage) */
    unsigned int read_timeout; /* seconds, 0: none; for messages */
    db_stmt_cache stmts;
};

/* ---- errors -------------------------------------------------------------- */

static db_errkind kind_for(unsigned int code) {
    switch (code) {
    case 1022: /* ER_DUP_KEY */
    case 1062: /* ER_DUP_ENTRY */
    case 1169: /* ER_DUP_UNIQUE */
    case 1586: /* ER_DUP_ENTRY_WITH_KEY_NAME */
        return DB_ERR_DUPLICATE;
    case 1048: /* ER_BAD_NULL_ERROR */
    case 1216: /* ER_NO_REFERENCED_ROW */
    case 1217: /* ER_ROW_IS_REFERENCED */
    case 1364: /* ER_NO_DEFAULT_FOR_FIELD */
    case 1451: /* ER_ROW_IS_REFERENCED_2 */
    case 1452: /* ER_NO_REFERENCED_ROW_2 */
    case 3819: /* MySQL: ER_CHECK_CONSTRAINT_VIOLATED */
    case 4025: /* MariaDB: ER_CONSTRAINT_FAILED */
        return DB_ERR_INTEGRITY;
    case 1020: /* ER_CHECKREAD: MariaDB snapshot isolation, record changed */
    case 1205: /* ER_LOCK_WAIT_TIMEOUT */
    case 1213: /* ER_LOCK_DEADLOCK */
    case 3572: /* MySQL: ER_LOCK_NOWAIT */
        return DB_ERR_BUSY;
    /* The server stopped the statement; the session is fine, and a retry
     * would only wait as long again. */
    case 1317: /* ER_QUERY_INTERRUPTED (KILL QUERY) */
    case 1969: /* MariaDB: ER_STATEMENT_TIMEOUT (max_statement_time) */
    case 3024: /* MySQL: ER_QUERY_TIMEOUT (max_execution_time) */
        return DB_ERR_TIMEOUT;
    case 1046: /* ER_NO_DB_ERROR */
    case 1049: /* ER_BAD_DB_ERROR */
    case 1050: /* ER_TABLE_EXISTS_ERROR */
    case 1054: /* ER_BAD_FIELD_ERROR */
    case 1060: /* ER_DUP_FIELDNAME */
    case 1061: /* ER_DUP_KEYNAME */
    case 1064: /* ER_PARSE_ERROR */
    case 1146: /* ER_NO_SUCH_TABLE */
    case 1149: /* ER_SYNTAX_ERROR */
    case 1210: /* ER_WRONG_ARGUMENTS */
        return DB_ERR_PROGRAMMING;
    case 1040: /* ER_CON_COUNT_ERROR */
    case 1044: /* ER_DBACCESS_DENIED_ERROR */
    case 1045: /* ER_ACCESS_DENIED_ERROR */
    case 1053: /* ER_SERVER_SHUTDOWN */
    case 1927: /* MariaDB: ER_CONNECTION_KILLED */
    case 4031: /* idle client disconnected by the server */
    case CR_SOCKET_CREATE_ERROR:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_SERVER_LOST:
    case CR_SSL_CONNECTION_ERROR:
    case 2055: /* CR_SERVER_LOST_EXTENDED */
        return DB_ERR_CONNECT;
    case 1264: /* ER_WARN_DATA_OUT_OF_RANGE */
    case 1265: /* WARN_DATA_TRUNCATED */
    case 1292: /* ER_TRUNCATED_WRONG_VALUE */
    case 1366: /* ER_TRUNCATED_WRONG_VALUE_FOR_FIELD */
    case 1367: /* ER_ILLEGAL_VALUE_FOR_TYPE */
    case 1406: /* ER_DATA_TOO_LONG */
        return DB_ERR_DATA;
    default:
        return DB_ERR_OPERATIONAL;
    }
}

/* MariaDB on Galera: a transaction aborted for a conflict (brute force)
 * while the server was opening what a trigger uses fails as another
 * error: a syntax error in the trigger's body (1064), or the change log
 * table the trigger writes missing (1146). The registry's own change-log
 * triggers (DB_CHANGE_TRIGGER_PREFIX..., store/changes.c) are known to
 * parse, and its change log to exist, so on a Galera node it is the
 * conflict, and retried as one. Elsewhere the error stays what it says. */
static int aborted_in_our_trigger(unsigned int code, const char *msg) {
    static const char body[] = "Trigger '" DB_CHANGE_TRIGGER_PREFIX;
    static const char unnamed[] = "Unknown trigger ";
    static const char log[] = ".feast_sqlreg_changes' doesn't exist";
    if (!msg) return 0;
    /* The trigger is named, or, where the abort came while its name was
     * read, "Unknown trigger" (seen under a node kill: 20 calls in a row
     * on one node, then none). The tables it is on are the registry's. */
    if (code == 1064)
        return (strncmp(msg, body, sizeof(body) - 1) == 0 ||
                strncmp(msg, unnamed, sizeof(unnamed) - 1) == 0) &&
               strstr(msg, "has an error in its body");
    if (code == 1146) {
        size_t n = strlen(msg);
        return strncmp(msg, "Table '", 7) == 0 && n > sizeof(log) - 1 &&
               strcmp(msg + n - (sizeof(log) - 1), log) == 0;
    }
    return 0;
}

db_errkind db_mysql_error_kind(unsigned int code, const char *msg, int wsrep) {
    return wsrep && aborted_in_our_trigger(code, msg) ? DB_ERR_BUSY : kind_for(code);
}

/* A Galera node's damaged trigger cache. The abort behind
 * aborted_in_our_trigger can leave the node's cached copy of the table
 * with its triggers unparsed, and every statement of every session that
 * is handed that copy then fails the same way (seen under a node kill: 20 s
 * of it on one node, from raw sessions too, until FLUSH TABLES), and a
 * session that met it can keep failing after the flush (its prepared
 * statements). So a connection that reports it is not pooled again
 * (my_reusable), and when it is reported again on another connection
 * before any commit succeeds, the connection on its way out flushes the
 * node's table cache (my_close: FLUSH LOCAL TABLES, which needs the RELOAD
 * privilege; without it the retries go on as before). */
static atomic_int node_damage; /* reports since the last successful COMMIT on a Galera node */

/* Fills err from a server error on c, and marks c damaged where the error
 * is one of aborted_in_our_trigger's (the only 1064 and 1146 that are
 * DB_ERR_BUSY). */
static int set_err(db_conn *c, db_err *err, unsigned int code, const char *sqlstate,
                   const char *msg) {
    db_errkind kind = db_mysql_error_kind(code, msg, c->wsrep);
    db_err_set(err, kind, (int)code, sqlstate, "mysql: %s", msg && msg[0] ? msg : "unknown error");
    if (kind == DB_ERR_BUSY && (code == 1064 || code == 1146) && !c->damaged) {
        c->damaged = 1;
        atomic_fetch_add(&node_damage, 1);
    }
    return -1;
}

static int fail(db_conn *c, db_err *err) {
    return set_err(c, err, mysql_errno(c->my), mysql_sqlstate(c->my), mysql_error(c->my));
}

/* A statement's error; the connection's where the statement has none: an
 * error packet that arrives while rows are read (a deadlock or a Galera
 * conflict that aborts the transaction mid-result, an expression failing
 * at some row) is recorded on the connection only, and the statement's
 * error number stays 0. */
static int fail_stmt(db_conn *c, MYSQL_STMT *st, db_err *err) {
    if (mysql_stmt_errno(st) == 0 && mysql_errno(c->my) != 0) return fail(c, err);
    return set_err(c, err, mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st));
}

static int oom(db_err *err) {
    db_err_set(err, DB_ERR_NOMEM, CR_OUT_OF_MEMORY, NULL, "mysql: out of memory");
    return -1;
}

/* ---- connections --------------------------------------------------------- */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_rc;

static void library_init(void) {
    library_rc = mysql_library_init(0, NULL, NULL);
}

static char *plugin_dir; /* set before any connection, then only read */

/* The first directory stays: a second import of the module (another
 * interpreter) must not free a string a connecting thread may be reading. */
int db_mysql_set_plugin_dir(const char *dir) {
    if (plugin_dir) return 0;
    plugin_dir = strdup(dir);
    return plugin_dir ? 0 : -1;
}

static const char *const KNOWN_KEYS[] = {
    "charset",         "connect_timeout",    "read_timeout", "write_timeout", "unix_socket",
    "host",            "wsrep_sync_wait",
    "ssl_ca",          "ssl_cert",           "ssl_key",      "ssl_capath",    "ssl_cipher",
    "ssl_verify_cert", "ssl_check_hostname", "ssl_mode",     "ssl",           NULL,
};

/* Drivers whose "localhost" means TCP, as in PyMySQL; with MySQLdb (the
 * default for mysql:// URLs) and the C library it means the Unix socket. */
static const char *const TCP_DRIVERS[] = {"pymysql", "mysqlconnector", "aiomysql",
                                          "asyncmy", "cymysql",        NULL};

enum { TLS_UNSET, TLS_DISABLED, TLS_PREFERRED, TLS_REQUIRED, TLS_VERIFY_CA, TLS_VERIFY_IDENTITY };
static const char *const TLS_MODES[] = {"",          "disabled",        "preferred", "required",
                                        "verify_ca", "verify_identity", NULL};

typedef struct {
    const char *charset;
    const char *socket;
    unsigned int connect_timeout, read_timeout, write_timeout; /* 0: library default */
    const char *ca, *cert, *key, *capath, *cipher;
    int tls;
    int sync_wait; /* wsrep_sync_wait from the URL, -1: none */
} conn_opts;

static int config_err(db_err *err, const char *key, const char *why) {
    db_err_set(err, DB_ERR_CONFIG, 0, NULL, "mysql: URL query parameter '%s' %s", key, why);
    return -1;
}

static int opt_uint(const db_url *url, const char *key, unsigned int *out, db_err *err) {
    const char *v = url_query(url, key);
    if (!v) return 0;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end || n > INT_MAX)
        return config_err(err, key, "must be a whole number of seconds");
    *out = (unsigned int)n;
    return 0;
}

/* Seconds as a whole number for the library, rounded up: PyMySQL takes
 * fractions for its timeouts. */
static int opt_seconds(const db_url *url, const char *key, unsigned int *out, db_err *err) {
    const char *v = url_query(url, key);
    if (!v) return 0;
    char *end;
    double t = strtod(v, &end);
    if (v[0] < '0' || v[0] > '9' || *end || !(t >= 0 && t <= INT_MAX))
        return config_err(err, key, "must be a number of seconds");
    unsigned int n = (unsigned int)t;
    *out = n + ((double)n < t);
    return 0;
}

/* -1 when absent, else 0 or 1. */
static int opt_bool(const db_url *url, const char *key, int *out, db_err *err) {
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    const char *v = url_query(url, key);
    *out = -1;
    if (!v) return 0;
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(v, yes[i]) == 0) *out = 1;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(v, no[i]) == 0) *out = 0;
    if (*out < 0) return config_err(err, key, "must be true or false");
    return 0;
}

static int read_opts(const db_url *url, conn_opts *o, db_err *err) {
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < url->nquery; i++) {
        int known = 0;
        for (int j = 0; KNOWN_KEYS[j] && !known; j++)
            known = strcmp(url->qkey[i], KNOWN_KEYS[j]) == 0;
        if (!known) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "mysql: unknown URL query parameter '%s' (supported: charset, "
                       "connect_timeout, read_timeout, write_timeout, unix_socket, host, "
                       "wsrep_sync_wait, ssl_ca, "
                       "ssl_cert, ssl_key, ssl_capath, ssl_cipher, ssl_verify_cert, "
                       "ssl_check_hostname, ssl_mode, ssl)",
                       url->qkey[i]);
            return -1;
        }
    }
    o->charset = url_query(url, "charset");
    if (!o->charset || !o->charset[0]) o->charset = "utf8mb4";
    o->socket = url_query(url, "unix_socket");
    if (o->socket && !o->socket[0]) o->socket = NULL;
    o->connect_timeout = 10;
    o->sync_wait = -1;
    const char *sync_wait = url_query(url, "wsrep_sync_wait");
    if (sync_wait) {
        char *end;
        unsigned long n = strtoul(sync_wait, &end, 10);
        if (sync_wait[0] < '0' || sync_wait[0] > '9' || *end || n > 15)
            return config_err(err, "wsrep_sync_wait", "must be a whole number from 0 to 15");
        o->sync_wait = (int)n;
    }
    if (opt_uint(url, "connect_timeout", &o->connect_timeout, err) != 0 ||
        opt_seconds(url, "read_timeout", &o->read_timeout, err) != 0 ||
        opt_seconds(url, "write_timeout", &o->write_timeout, err) != 0)
        return -1;

    o->ca = url_query(url, "ssl_ca");
    o->cert = url_query(url, "ssl_cert");
    o->key = url_query(url, "ssl_key");
    o->capath = url_query(url, "ssl_capath");
    o->cipher = url_query(url, "ssl_cipher");
    int files = o->ca || o->cert || o->key || o->capath || o->cipher;

    /* ssl_mode as in MySQL's clients; ssl=true|false as a shorthand. */
    const char *mode = url_query(url, "ssl_mode");
    int ssl, verify_cert, check_hostname;
    if (opt_bool(url, "ssl", &ssl, err) != 0 ||
        opt_bool(url, "ssl_verify_cert", &verify_cert, err) != 0 ||
        opt_bool(url, "ssl_check_hostname", &check_hostname, err) != 0)
        return -1;
    o->tls = TLS_UNSET;
    if (mode) {
        for (int i = 1; TLS_MODES[i] && o->tls == TLS_UNSET; i++)
            if (strcasecmp(mode, TLS_MODES[i]) == 0) o->tls = i;
        if (o->tls == TLS_UNSET)
            return config_err(err, "ssl_mode",
                              "must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or "
                              "VERIFY_IDENTITY");
    } else if (ssl >= 0) {
        o->tls = ssl ? TLS_REQUIRED : TLS_DISABLED;
    } else if (files) {
        o->tls = TLS_PREFERRED;
    }
    /* PyMySQL's flags: checking the certificate, then the host name too. */
    if (verify_cert > 0 && o->tls < TLS_VERIFY_CA) o->tls = TLS_VERIFY_CA;
    if (check_hostname > 0) o->tls = TLS_VERIFY_IDENTITY;
    if (o->tls == TLS_DISABLED && (files || verify_cert > 0 || check_hostname > 0)) {
        db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                   "mysql: TLS is disabled (ssl_mode / ssl) but other ssl_* parameters are set");
        return -1;
    }
    return 0;
}

static int set_opt(db_conn *c, enum mysql_option opt, const void *arg, const char *what,
                   db_err *err) {
    if (mysql_options(c->my, opt, arg) == 0) return 0;
    db_err_set(err, DB_ERR_CONFIG, (int)mysql_errno(c->my), NULL,
               "mysql: the client library rejected option %s", what);
    return -1;
}

static int apply_opts(db_conn *c, const conn_opts *o, int tcp, db_err *err) {
    unsigned int off = 0;
    if (set_opt(c, MYSQL_SET_CHARSET_NAME, o->charset, "charset", err) != 0 ||
        set_opt(c, MYSQL_OPT_LOCAL_INFILE, &off, "local_infile", err) != 0 ||
        (o->connect_timeout &&
         set_opt(c, MYSQL_OPT_CONNECT_TIMEOUT, &o->connect_timeout, "connect_timeout", err)) ||
        (o->read_timeout &&
         set_opt(c, MYSQL_OPT_READ_TIMEOUT, &o->read_timeout, "read_timeout", err)) ||
        (o->write_timeout &&
         set_opt(c, MYSQL_OPT_WRITE_TIMEOUT, &o->write_timeout, "write_timeout", err)) ||
        (plugin_dir && set_opt(c, MYSQL_PLUGIN_DIR, plugin_dir, "plugin_dir", err)))
        return -1;
    if (o->socket) {
        unsigned int proto = MYSQL_PROTOCOL_SOCKET;
        if (set_opt(c, MYSQL_OPT_PROTOCOL, &proto, "unix_socket", err) != 0) return -1;
    } else if (tcp) {
        unsigned int proto = MYSQL_PROTOCOL_TCP;
        if (set_opt(c, MYSQL_OPT_PROTOCOL, &proto, "protocol", err) != 0) return -1;
    }
#ifdef HAVE_MARIADB_CLIENT
    flag_t no = 0;
    if (set_opt(c, MYSQL_OPT_RECONNECT, &no, "reconnect", err) != 0) return -1;
#endif
    if (o->tls == TLS_UNSET || o->tls == TLS_DISABLED) {
#ifndef HAVE_MARIADB_CLIENT
        /* Oracle's library negotiates TLS by default (PREFERRED). */
        if (o->tls == TLS_DISABLED) {
            unsigned int m = SSL_MODE_DISABLED;
            if (set_opt(c, MYSQL_OPT_SSL_MODE, &m, "ssl_mode", err) != 0) return -1;
        }
#endif
        return 0;
    }
    if ((o->ca && set_opt(c, MYSQL_OPT_SSL_CA, o->ca, "ssl_ca", err)) ||
        (o->capath && set_opt(c, MYSQL_OPT_SSL_CAPATH, o->capath, "ssl_capath", err)) ||
        (o->cert && set_opt(c, MYSQL_OPT_SSL_CERT, o->cert, "ssl_cert", err)) ||
        (o->key && set_opt(c, MYSQL_OPT_SSL_KEY, o->key, "ssl_key", err)) ||
        (o->cipher && set_opt(c, MYSQL_OPT_SSL_CIPHER, o->cipher, "ssl_cipher", err)))
        return -1;
#ifdef HAVE_MARIADB_CLIENT
    /* Connector/C has no ssl_mode: it checks the chain whenever ssl_ca or
     * ssl_capath is given; VERIFY_SERVER_CERT checks the chain against the
     * system's CAs when there is neither, and the host name, and fails
     * when the server has no TLS. REQUIRED is checked after connecting. */
    flag_t on = 1;
    flag_t verify =
        o->tls == TLS_VERIFY_IDENTITY || (o->tls == TLS_VERIFY_CA && !o->ca && !o->capath);
    if (set_opt(c, MYSQL_OPT_SSL_ENFORCE, &on, "ssl_mode", err) != 0) return -1;
    if (verify && set_opt(c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify, "ssl_verify_cert", err))
        return -1;
#else
    unsigned int m = o->tls == TLS_PREFERRED   ? SSL_MODE_PREFERRED
                     : o->tls == TLS_REQUIRED  ? SSL_MODE_REQUIRED
                     : o->tls == TLS_VERIFY_CA ? SSL_MODE_VERIFY_CA
                                               : SSL_MODE_VERIFY_IDENTITY;
    if (set_opt(c, MYSQL_OPT_SSL_MODE, &m, "ssl_mode", err) != 0) return -1;
#endif
    return 0;
}

static void close_stmt(void *st) {
    mysql_stmt_close(st);
}

static void stmts_free(db_conn *c) {
    db_stmt_cache_clear(&c->stmts);
}

static void my_close(db_conn *c) {
    if (!c) return;
    stmts_free(c);
    /* node_damage: the second report since a commit; the lock wait is
     * bounded, as FLUSH waits for the tables' open transactions. */
    if (c->damaged && c->my && atomic_load(&node_damage) >= 2) {
        atomic_store(&node_damage, 0);
        if (mysql_query(c->my, "ROLLBACK") == 0 &&
            mysql_query(c->my, "SET SESSION lock_wait_timeout = 2") == 0)
            (void)mysql_query(c->my, "FLUSH LOCAL TABLES");
    }
    if (c->my) mysql_close(c->my);
    free(c);
}

/* On a Galera node, a read waits until the node has applied every write
 * the cluster committed before it (causal reads, bit 1 of
 * wsrep_sync_wait): without it a read on one node (read_path, another
 * replica's path) can miss what was just written on another, a
 * process's own writes included. ?wsrep_sync_wait=N in the URL sets the
 * value instead. A server without the variable (MySQL, a MariaDB built
 * without Galera) is left as it is. c->wsrep records a Galera node: its
 * conflict aborts can surface as other errors (db_mysql_error_kind). */
static int galera_session(db_conn *c, const conn_opts *o, db_err *err) {
    static const char ask[] = "SELECT @@wsrep_on, @@wsrep_sync_wait";
    long have = -1;
    if (mysql_real_query(c->my, ask, sizeof(ask) - 1) != 0) {
        if (mysql_errno(c->my) != ER_UNKNOWN_SYSTEM_VARIABLE || o->sync_wait >= 0)
            return fail(c, err);
        return 0; /* no Galera in this server */
    }
    MYSQL_RES *res = mysql_store_result(c->my);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0] && row[1]) {
        c->wsrep = atoi(row[0]) == 1;
        have = atol(row[1]);
    }
    if (res) mysql_free_result(res);
    if (!row) return fail(c, err);
    long want = o->sync_wait >= 0 ? o->sync_wait : c->wsrep ? (have | 1) : have;
    if (want == have) return 0;
    char sql[64];
    snprintf(sql, sizeof(sql), "SET SESSION wsrep_sync_wait = %ld", want);
    return mysql_real_query(c->my, sql, (unsigned long)strlen(sql)) == 0 ? 0 : fail(c, err);
}

/* One connection to host:port (NULL host: the URL's socket or the
 * library's default). */
static db_conn *connect_one(const db_url *url, const conn_opts *o, const char *host,
                            unsigned int port, db_err *err) {
    db_conn *c = calloc(1, sizeof(*c));
    if (!c || !(c->my = mysql_init(NULL))) {
        free(c);
        oom(err);
        return NULL;
    }
    c->stmts.release = close_stmt;
    c->read_timeout = o->read_timeout;
    int tcp = 0;
    for (int i = 0; url->driver && TCP_DRIVERS[i]; i++)
        if (strcmp(url->driver, TCP_DRIVERS[i]) == 0) tcp = 1;
    if (o->socket)
        host = NULL; /* the socket wins, as in PyMySQL */
    else if (tcp && !host)
        host = "localhost";
    if (apply_opts(c, o, tcp, err) != 0) {
        my_close(c);
        return NULL;
    }
    if (!mysql_real_connect(c->my, host, url->user, url->password, url->database, port, o->socket,
                            CLIENT_FOUND_ROWS)) {
        unsigned int code = mysql_errno(c->my);
        if (code == CR_CANT_READ_CHARSET)
            db_err_set(err, DB_ERR_CONFIG, (int)code, mysql_sqlstate(c->my),
                       "mysql: unknown charset '%s': %s", o->charset, mysql_error(c->my));
        else
            db_err_set(err, DB_ERR_CONNECT, (int)code, mysql_sqlstate(c->my), "mysql: %s",
                       mysql_error(c->my));
        my_close(c);
        return NULL;
    }
    if (o->tls >= TLS_REQUIRED && !mysql_get_ssl_cipher(c->my)) {
        db_err_set(err, DB_ERR_CONNECT, CR_SSL_CONNECTION_ERROR, NULL,
                   "mysql: TLS is required (ssl_mode=%s) but the server does not support it",
                   TLS_MODES[o->tls]);
        my_close(c);
        return NULL;
    }
    if (galera_session(c, o, err) != 0) {
        my_close(c);
        return NULL;
    }
    return c;
}

/* Errors after which the next host of a list is tried: this host could not
 * be reached or is going away; an answer such as "access denied" or
 * "unknown database" would be the same on every host. */
static int try_next_host(unsigned int code) {
    return code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR || code == CR_IPSOCK_ERROR ||
           code == CR_UNKNOWN_HOST || code == CR_SERVER_LOST || code == CR_SERVER_GONE_ERROR ||
           code == CR_SERVER_HANDSHAKE_ERR || code == 2055 || code == 1040 || code == 1053;
}

/* Several servers (a Galera cluster without a proxy in front):
 * ?host=HostA:PortA&host=HostB, the form SQLAlchemy takes for PostgreSQL.
 * Each is tried in turn until one accepts the connection. */
static db_conn *connect_hosts(const db_url *url, const conn_opts *o, db_err *err) {
    db_conn *c = NULL;
    int tried = 0;
    for (int i = 0; i < url->nquery && !c; i++) {
        if (strcmp(url->qkey[i], "host") != 0) continue;
        const char *v = url->qval[i];
        char host[256];
        unsigned int port = 0;
        const char *h = v, *colon = strrchr(v, ':');
        size_t hn = strlen(v);
        if (v[0] == '[' && strchr(v, ']')) { /* [v6] or [v6]:port */
            const char *close = strchr(v, ']');
            h = v + 1;
            hn = (size_t)(close - h);
            colon = close[1] == ':' ? close + 1 : NULL;
        } else if (colon && strchr(v, ':') != colon) {
            colon = NULL; /* a bare IPv6 address */
        }
        if (colon) {
            char *end;
            unsigned long n = strtoul(colon + 1, &end, 10);
            if (colon[1] < '0' || colon[1] > '9' || *end || n < 1 || n > 65535) {
                db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                           "mysql: URL query parameter 'host' (host %d): the port is not a "
                           "number from 1 to 65535",
                           tried + 1);
                return NULL;
            }
            port = (unsigned int)n;
            if (h == v) hn = (size_t)(colon - v);
        }
        if (hn == 0 || hn >= sizeof(host)) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "mysql: URL query parameter 'host' (host %d) is empty or too long",
                       tried + 1);
            return NULL;
        }
        memcpy(host, h, hn);
        host[hn] = '\0';
        tried++;
        c = connect_one(url, o, host, port, err);
        if (!c && !try_next_host((unsigned int)err->code)) return NULL;
    }
    if (!c && tried > 1) {
        size_t k = strlen(err->msg);
        if (k < sizeof(err->msg) - 1)
            snprintf(err->msg + k, sizeof(err->msg) - k, " (the last of the %d hosts tried)",
                     tried);
    }
    return c;
}

static db_conn *my_connect(const db_url *url, db_err *err) {
    conn_opts o;
    if (read_opts(url, &o, err) != 0) return NULL;
    pthread_once(&library_once, library_init);
    if (library_rc != 0) {
        db_err_set(err, DB_ERR_INTERFACE, library_rc, NULL,
                   "mysql: the client library failed to initialize");
        return NULL;
    }
    if (url_query(url, "host")) {
        if ((url->host && url->host[0]) || url->port > 0 || o.socket) {
            db_err_set(err, DB_ERR_CONFIG, 0, NULL,
                       "mysql: the registry URL names a server both before the database and "
                       "in ?host= (or unix_socket): name them all in ?host=host1:port1&host=host2");
            return NULL;
        }
        return connect_hosts(url, &o, err);
    }
    const char *host = url->host && url->host[0] ? url->host : NULL;
    return connect_one(url, &o, host, (unsigned int)(url->port > 0 ? url->port : 0), err);
}

/* ---- statements ---------------------------------------------------------- */

/* Parameterless statements that are neither queries nor DML (DDL, transaction
 * control) run as plain text: not every server can prepare every DDL
 * statement, and one-off statements would only churn the cache. */
static int use_text(const char *sql) {
    static const char *const prepared[] = {"SELECT",  "INSERT", "UPDATE", "DELETE",
                                           "REPLACE", "WITH",   NULL};
    if (strchr(sql, '?')) return 0;
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
        sql++;
    for (int i = 0; prepared[i]; i++) {
        size_t n = strlen(prepared[i]);
        if (strncasecmp(sql, prepared[i], n) == 0 &&
            !((sql[n] >= 'A' && sql[n] <= 'Z') || (sql[n] >= 'a' && sql[n] <= 'z') ||
              sql[n] == '_'))
            return 0;
    }
    return 1;
}

/* The cached statement for sql, preparing it on first use. Sets
 * *unsupported (and leaves err alone) when the server cannot prepare it.
 *
 * The server bounds prepared statements across all its sessions
 * (max_prepared_stmt_count, 16382 by default), and a registry connection
 * keeps about 60: a large fleet can reach the bound. A connection that
 * meets it gives back its own cached statements and tries once more, so it
 * keeps working with what it needs now rather than failing. */
static MYSQL_STMT *prepare(db_conn *c, const char *sql, int *unsupported, db_err *err) {
    MYSQL_STMT *st = db_stmt_cache_find(&c->stmts, sql);
    if (st) return st;
    for (int attempt = 0;; attempt++) {
        st = mysql_stmt_init(c->my);
        if (!st) {
            fail(c, err);
            return NULL;
        }
        if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) == 0) break;
        unsigned code = mysql_stmt_errno(st);
        if (code == ER_MAX_PREPARED_STMT_COUNT_REACHED && attempt == 0 && c->stmts.n > 0) {
            mysql_stmt_close(st);
            db_stmt_cache_clear(&c->stmts);
            continue;
        }
        if (code == ER_UNSUPPORTED_PS) {
            *unsupported = 1;
        } else {
            fail_stmt(c, st, err);
            char state[sizeof(err->sqlstate)];
            memcpy(state, err->sqlstate, sizeof(state));
            if (code == ER_MAX_PREPARED_STMT_COUNT_REACHED)
                db_err_set(err, err->kind, (int)code, state,
                           "mysql: the server's max_prepared_stmt_count is reached (every "
                           "client's prepared statements count; a feast_sqlreg connection "
                           "keeps about 60): raise it on the server");
        }
        mysql_stmt_close(st);
        return NULL;
    }
    if (db_stmt_cache_add(&c->stmts, sql, st, err) != 0) return NULL;
    return st;
}

static int is_int_type(enum enum_field_types t) {
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

/* Bytes columns: binary (charset 63) ones are blobs, the others text. */
static int is_bytes_type(enum enum_field_types t) {
    return t == MYSQL_TYPE_TINY_BLOB || t == MYSQL_TYPE_MEDIUM_BLOB || t == MYSQL_TYPE_LONG_BLOB ||
           t == MYSQL_TYPE_BLOB || t == MYSQL_TYPE_VARCHAR || t == MYSQL_TYPE_VAR_STRING ||
           t == MYSQL_TYPE_STRING || t == MYSQL_TYPE_BIT || t == MYSQL_TYPE_GEOMETRY;
}

static db_type type_for(const MYSQL_FIELD *f) {
    if (is_int_type(f->type)) return DB_INT;
    /* Numbers and dates also carry charset 63: they come back as text. */
    return is_bytes_type(f->type) && f->charsetnr == 63 ? DB_BLOB : DB_TEXT;
}

/* Binds params and executes: the bound buffers only need to last until then. */
static int bind_execute(db_conn *c, MYSQL_STMT *st, const db_value *params, int n, db_err *err) {
    if (mysql_stmt_param_count(st) != (unsigned long)n) {
        db_err_set(err, DB_ERR_INTERFACE, 0, NULL,
                   "mysql: statement takes %lu parameters, %d given",
                   (unsigned long)mysql_stmt_param_count(st), n);
        return -1;
    }
    if (n == 0) return mysql_stmt_execute(st) != 0 ? fail_stmt(c, st, err) : 0;
    MYSQL_BIND *b = calloc((size_t)n, sizeof(*b));
    long long *ints = calloc((size_t)n, sizeof(*ints));
    int rv = 0;
    if (!b || !ints) {
        rv = oom(err);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const db_value *v = &params[i];
        switch (v->type) {
        case DB_INT:
            ints[i] = v->i;
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &ints[i];
            break;
        case DB_TEXT:
        case DB_BLOB:
            /* An empty value stays empty, not NULL. The library only reads
             * the buffer. */
            b[i].buffer_type = v->type == DB_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
            b[i].buffer = (void *)(v->p && v->n ? (const char *)v->p : "");
            b[i].buffer_length = (unsigned long)v->n;
            break;
        default:
            b[i].buffer_type = MYSQL_TYPE_NULL;
        }
    }
    if (mysql_stmt_bind_param(st, b) != 0) rv = fail_stmt(c, st, err);
    if (rv == 0 && mysql_stmt_execute(st) != 0) rv = fail_stmt(c, st, err);
done:
    free(b);
    free(ints);
    return rv;
}

typedef struct {
    long long i;
    unsigned long len;
    flag_t is_null, error;
    db_type type;
    char *heap; /* when the value outgrew small */
    char small[SMALL_VALUE];
} colbuf;

/* Reads the result rows of an executed statement, calling row for each. */
static int fetch_rows(db_conn *c, MYSQL_STMT *st, db_row_fn row, void *ctx, int64_t *affected, db_err *err) {
    unsigned int n = mysql_stmt_field_count(st);
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta) return fail_stmt(c, st, err);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND *b = calloc(n, sizeof(*b));
    colbuf *cb = calloc(n, sizeof(*cb));
    db_value *cols = calloc(n, sizeof(*cols));
    int rv = 0;
    int64_t nrows = 0;
    if (!b || !cb || !cols) {
        rv = oom(err);
        goto done;
    }
    for (unsigned int i = 0; i < n; i++) {
        cb[i].type = type_for(&fields[i]);
        b[i].length = &cb[i].len;
        b[i].is_null = &cb[i].is_null;
        b[i].error = &cb[i].error;
        if (cb[i].type == DB_INT) {
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &cb[i].i;
            b[i].is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        } else {
            b[i].buffer_type = cb[i].type == DB_BLOB ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
            b[i].buffer = cb[i].small;
            b[i].buffer_length = SMALL_VALUE;
        }
    }
    if (mysql_stmt_bind_result(st, b) != 0) {
        rv = fail_stmt(c, st, err);
        goto done;
    }
    for (;;) {
        int rc = mysql_stmt_fetch(st);
        if (rc == MYSQL_NO_DATA) break;
        if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
            rv = fail_stmt(c, st, err);
            break;
        }
        int rebind = 0;
        for (unsigned int i = 0; i < n && rv == 0; i++) {
            if (cb[i].is_null) {
                cols[i] = db_null();
                continue;
            }
            if (cb[i].type == DB_INT) {
                cols[i] = db_int(cb[i].i);
                continue;
            }
            if (cb[i].len > b[i].buffer_length) {
                /* Truncated: read the whole value into a buffer that fits
                 * (with room for the terminating NUL of strings), and keep
                 * that buffer bound for the next rows. */
                char *p = realloc(cb[i].heap, (size_t)cb[i].len + 1);
                if (!p) {
                    rv = oom(err);
                    break;
                }
                cb[i].heap = p;
                b[i].buffer = p;
                b[i].buffer_length = cb[i].len + 1;
                MYSQL_BIND one = b[i];
                if (mysql_stmt_fetch_column(st, &one, i, 0) != 0) {
                    rv = fail_stmt(c, st, err);
                    break;
                }
                rebind = 1;
            }
            cols[i] = cb[i].type == DB_BLOB ? db_blob(b[i].buffer, cb[i].len)
                                            : db_text(b[i].buffer, cb[i].len);
        }
        if (rv != 0) break;
        if (rebind && mysql_stmt_bind_result(st, b) != 0) {
            rv = fail_stmt(c, st, err);
            break;
        }
        nrows++;
        if (row && row(ctx, cols, (int)n, err) != 0) {
            rv = -1;
            break;
        }
    }
    if (rv == 0 && affected) *affected = nrows;
done:
    if (cb)
        for (unsigned int i = 0; i < n; i++)
            free(cb[i].heap);
    free(b);
    free(cb);
    free(cols);
    mysql_free_result(meta);
    return rv;
}

/* Runs sql through the text protocol (no parameters). */
static int text_exec(db_conn *c, const char *sql, db_row_fn row, void *ctx, int64_t *affected,
                     db_err *err) {
    if (mysql_real_query(c->my, sql, (unsigned long)strlen(sql)) != 0) return fail(c, err);
    int rv = 0, first = 1, more = -1;
    do {
        MYSQL_RES *res = mysql_store_result(c->my);
        if (!res) {
            if (mysql_field_count(c->my) != 0) {
                if (rv == 0) rv = fail(c, err);
                break;
            }
            if (first && affected) *affected = (int64_t)mysql_affected_rows(c->my);
        } else {
            unsigned int n = mysql_num_fields(res);
            MYSQL_FIELD *fields = mysql_fetch_fields(res);
            db_value *cols = calloc(n ? n : 1, sizeof(*cols));
            MYSQL_ROW r;
            if (!cols && rv == 0) rv = oom(err);
            while (rv == 0 && first && (r = mysql_fetch_row(res))) {
                unsigned long *len = mysql_fetch_lengths(res);
                for (unsigned int i = 0; i < n; i++) {
                    db_type t = type_for(&fields[i]);
                    if (!r[i])
                        cols[i] = db_null();
                    else if (t == DB_INT)
                        cols[i] = db_int(strtoll(r[i], NULL, 10));
                    else
                        cols[i] = t == DB_BLOB ? db_blob(r[i], len[i]) : db_text(r[i], len[i]);
                }
                if (row && row(ctx, cols, (int)n, err) != 0) rv = -1;
            }
            if (first && affected) *affected = (int64_t)mysql_num_rows(res);
            free(cols);
            mysql_free_result(res);
        }
        first = 0;
    } while ((more = mysql_next_result(c->my)) == 0);
    if (more > 0 && rv == 0) rv = fail(c, err);
    return rv;
}

static int is_lost(unsigned int code) {
    return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST || code == 2055;
}

/* A connection lost in the middle of a statement: say that the statement
 * may or may not have run, and name read_timeout, the usual cause when the
 * server is alive but stalled. */
static void explain_lost(const db_conn *c, db_err *err) {
    if (err->code != CR_SERVER_LOST && err->code != 2055) return;
    size_t k = strlen(err->msg);
    if (k >= sizeof(err->msg) - 1) return;
    if (c->read_timeout)
        snprintf(err->msg + k, sizeof(err->msg) - k,
                 " (no answer within read_timeout %u s, or the server went away); the "
                 "statement's outcome is unknown",
                 c->read_timeout);
    else
        snprintf(err->msg + k, sizeof(err->msg) - k, "; the statement's outcome is unknown");
}

/* Closes a cached statement and drops it from the cache. */
static void forget(db_conn *c, MYSQL_STMT *st) {
    db_stmt_cache_forget(&c->stmts, st);
}

static int exec_stmt(db_conn *c, const char *sql, const db_value *params, int nparams,
                     db_row_fn row, void *ctx, int64_t *affected, db_err *err) {
    if (nparams == 0 && use_text(sql)) return text_exec(c, sql, row, ctx, affected, err);
    MYSQL_STMT *st = NULL;
    int rv = -1;
    for (int attempt = 1; attempt <= 2; attempt++) {
        int unsupported = 0;
        st = prepare(c, sql, &unsupported, err);
        if (!st) {
            if (unsupported && nparams == 0 && !strchr(sql, '?'))
                return text_exec(c, sql, row, ctx, affected, err);
            if (unsupported)
                db_err_set(err, DB_ERR_PROGRAMMING, ER_UNSUPPORTED_PS, "HY000",
                           "mysql: the server cannot prepare this statement");
            return -1;
        }
        rv = bind_execute(c, st, params, nparams, err);
        /* The server re-prepares a statement whose tables changed, but gives
         * up (ER_NEED_REPREPARE) when its table cache is too small: prepare
         * it afresh once. Nothing ran. */
        if (rv == 0 || err->code != 1615 || attempt == 2) break;
        forget(c, st);
        db_err_clear(err);
    }
    if (rv != 0 && (err->code == 1153 || is_lost((unsigned int)err->code))) {
        /* A value over the server's max_allowed_packet makes it hang up:
         * say so, or "server has gone away" is all the user sees. */
        size_t total = 0;
        for (int i = 0; i < nparams; i++)
            total += params[i].n;
        size_t k = strlen(err->msg);
        if (total >= 1024 * 1024 && k < sizeof(err->msg))
            snprintf(err->msg + k, sizeof(err->msg) - k,
                     " (while sending %zu bytes of values: is the server's max_allowed_packet "
                     "smaller?)",
                     total);
    }
    if (rv == 0) {
        if (mysql_stmt_field_count(st) > 0)
            rv = fetch_rows(c, st, row, ctx, affected, err);
        else if (affected)
            *affected = (int64_t)mysql_stmt_affected_rows(st);
    }
    /* Reads and drops any rows left (a stopped callback) so the connection is
     * ready for the next statement; client-side only, no round trip. */
    mysql_stmt_free_result(st);
    return rv;
}

static int my_exec(db_conn *c, const char *sql, const db_value *params, int nparams, db_row_fn row,
                   void *ctx, int64_t *affected, db_err *err) {
    int rv = exec_stmt(c, sql, params, nparams, row, ctx, affected, err);
    if (rv != 0) explain_lost(c, err);
    return rv;
}

/* ---- transactions -------------------------------------------------------- */

static int simple(db_conn *c, const char *sql, db_err *err) {
    int rv = text_exec(c, sql, NULL, NULL, NULL, err);
    if (rv != 0) explain_lost(c, err);
    return rv;
}

static int my_begin(db_conn *c, int write, db_err *err) {
    /* Row locks (SELECT ... FOR UPDATE) serialize writers; reads get one
     * snapshot for the whole transaction (REPEATABLE READ, the default). */
    return simple(c, write ? "START TRANSACTION" : "START TRANSACTION READ ONLY", err);
}

static int my_commit(db_conn *c, db_err *err) {
    int rv = simple(c, "COMMIT", err);
    if (rv == 0 && c->wsrep && atomic_load_explicit(&node_damage, memory_order_relaxed))
        atomic_store(&node_damage, 0);
    return rv;
}

static int my_reusable(db_conn *c) {
    return !c->damaged;
}

static int my_rollback(db_conn *c, db_err *err) {
    return simple(c, "ROLLBACK", err);
}

static int my_ping(db_conn *c, db_err *err) {
    if (mysql_ping(c->my) == 0) return 0;
    db_err_set(err, DB_ERR_CONNECT, (int)mysql_errno(c->my), mysql_sqlstate(c->my), "mysql: %s",
               mysql_error(c->my));
    return -1;
}

/* One AFTER trigger per operation, adding the row's key to the change log
 * (needs the TRIGGER privilege). */
static int my_change_trigger(int i, const char *table, const char *keycol, char *name,
                             size_t namelen, char *sql, size_t sqllen) {
    return db_change_trigger_per_op(
        "CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW "
        "INSERT INTO feast_sqlreg_changes (table_name, project_id, object_name, changed_at) "
        "VALUES ('%s', %s.project_id, %s.%s, UNIX_TIMESTAMP())",
        i, table, keycol, name, namelen, sql, sqllen);
}

static const db_sql_dialect my_sql = {
    .lock_suffix = " FOR UPDATE",
    .insert_missing_prefix = NULL, /* INSERT IGNORE would hide truncation */
    .insert_missing_suffix = NULL,
    .blob_type = "LONGBLOB", /* BLOB stops at 64 KB */
    .index_in_table = 1,
    .ddl_in_transaction = 0,
    .retry_busy = 1, /* InnoDB deadlocks writers racing to create one row */
    .tables_query = "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()",
    .changes_table =
        "CREATE TABLE IF NOT EXISTS feast_sqlreg_changes ("
        "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, table_name VARCHAR(64) NOT NULL, "
        "project_id VARCHAR(255) NOT NULL, object_name VARCHAR(255) NOT NULL, "
        "changed_at BIGINT NOT NULL)",
    .triggers_query = "SELECT trigger_name FROM information_schema.triggers "
                      "WHERE trigger_schema = DATABASE()",
    .change_trigger = my_change_trigger,
    /* GTID sequence numbers of domain 0-style single-domain replication:
     * the session's last commit, and what the read server holds. No binary
     * log: NULL (nothing to wait for); a server that never replicated
     * (empty @@gtid_slave_pos): NULL; a replica of several domains: NULL
     * too (its positions do not compare as one). What it holds is
     * @@gtid_current_pos, not @@gtid_slave_pos: the same on a replica, but
     * a replica promoted to primary keeps its last slave position for
     * good, while its own writes (its own server id, in its binary log) are
     * in the current position; with the slave position, every read after a
     * write there waited replica_wait in vain, then read path. */
    .write_position_query = "SELECT CAST(NULLIF(SUBSTRING_INDEX(@@last_gtid, '-', -1), '') "
                            "AS SIGNED)",
    .replay_position_query = "SELECT IF(@@gtid_slave_pos = '' OR LOCATE(',', @@gtid_slave_pos) > 0 "
                             "OR LOCATE(',', @@gtid_current_pos) > 0, "
                             "NULL, CAST(SUBSTRING_INDEX(@@gtid_current_pos, '-', -1) AS SIGNED))",
    .narrow_blob_query = "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                         "WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE = 'blob'",
};

const db_driver db_mysql_driver = {
    .name = "mysql",
    .dialect = DB_MYSQL,
    .sql = &my_sql,
    .connect = my_connect,
    .close = my_close,
    .exec = my_exec,
    .begin = my_begin,
    .commit = my_commit,
    .rollback = my_rollback,
    .ping = my_ping,
    .reusable = my_reusable,
};
