/*
 * pg.c — the server driver: the one file of Rapport that talks to PostgreSQL (libpq). It fills
 * the same rp_db_driver_t as the embedded driver, so the generic part of the room (db.c: the
 * statement cache, transaction levels, savepoints, the time budget) is the same on both.
 *
 * How it maps the interface:
 *   - SQL is written with SQLite's parameters (`?`, `?N`, `:name`); prepare rewrites them to
 *     `$N` once, outside string literals, quoted names and comments, and keeps the names for
 *     rp_db_param_index;
 *   - a statement is prepared on the server under a name of its own (rp_<n>) and deallocated
 *     when finalized; parameters go as text (a blob as binary), results come back as text;
 *   - a step runs the statement at its first call and reads the whole result: libpq runs one
 *     statement at a time, and the store reads one statement while it writes with another;
 *   - a column's type comes from the result's type (int2/4/8 and bool integers, float4/8
 *     floats, bytea a blob, NULL, else text); SQLSTATE classes become RP_DB_* codes;
 *   - rp_db_last_id() is lastval(): the id a serial or identity column gave last in the session.
 *
 * What it does not do yet (issue "Beyond one machine"): the store's own schemas and queries
 * are written for SQLite, so rp_db_open() refuses to migrate a PostgreSQL database; a failed
 * statement inside a transaction leaves the level failed until it is rolled back (SQLite
 * undoes only the statement); the time budget does not cancel a running statement.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

/* The type OIDs the driver tells apart (pg_type.h, stable since PostgreSQL 7). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701

#define PG_MAX_PARAMS 999

typedef struct pg_conn {
    PGconn *pg;
    char msg[512];    /* the last error, as the server or libpq gave it */
    int64_t changes;  /* rows the last INSERT, UPDATE or DELETE changed */
    uint64_t next_id; /* the name of the next prepared statement */
    uint32_t version; /* moves on every commit this connection makes */
} pg_conn_t;

typedef struct pg_stmt {
    rp_db_stmt_t base;
    char name[24];
    int nparams;
    char **names;       /* a parameter's name (":x") or NULL, by number - 1 */
    int nnames;         /* how many of names were given out */
    char **values;      /* owned copies of the bound values, NULL for SQL NULL */
    int *lengths;
    int *formats;       /* 1 for a binary (blob) value */
    bool readonly;
    PGresult *res;      /* the result being read, NULL before the first step */
    int row;            /* the row the col_* calls read, -1 before the first */
    unsigned char *blob; /* the decoded bytea of the last col_blob call */
    size_t blob_len;
    int blob_col;
} pg_stmt_t;

#define PC(db) ((pg_conn_t *)(db)->conn)
#define PS(st) ((pg_stmt_t *)(st))

static void set_msg(pg_conn_t *c, const char *m)
{
    snprintf(c->msg, sizeof c->msg, "%s", m && *m ? m : "unknown PostgreSQL error");
    /* libpq's messages end in a newline. */
    size_t n = strlen(c->msg);
    while (n && (c->msg[n - 1] == '\n' || c->msg[n - 1] == ' '))
        c->msg[--n] = '\0';
}

/* RP_DB_* for a failed result, its message kept on the connection. */
static int fail(pg_conn_t *c, PGresult *r)
{
    set_msg(c, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
    if (!r)
        return PQstatus(c->pg) == CONNECTION_OK ? RP_DB_NOMEM : RP_DB_ERROR;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state)
        return RP_DB_ERROR;
    if (strcmp(state, "23505") == 0)
        return RP_DB_UNIQUE;
    if (strcmp(state, "23503") == 0)
        return RP_DB_FOREIGN;
    if (strncmp(state, "23", 2) == 0)
        return RP_DB_CONSTRAINT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0)
        return RP_DB_BUSY;
    if (strcmp(state, "57014") == 0)
        return RP_DB_INTERRUPT;
    if (strcmp(state, "53100") == 0)
        return RP_DB_FULL;
    if (strcmp(state, "53200") == 0)
        return RP_DB_NOMEM;
    if (strcmp(state, "54000") == 0)
        return RP_DB_TOOBIG;
    return RP_DB_ERROR;
}

/* Notes what a command did: the rows it changed, and a commit. */
static void command_done(pg_conn_t *c, PGresult *r)
{
    const char *n = PQcmdTuples(r);
    if (n && *n)
        c->changes = strtoll(n, NULL, 10);
    const char *status = PQcmdStatus(r);
    if (status && (strcmp(status, "COMMIT") == 0 || strcmp(status, "RELEASE") == 0))
        c->version++;
}

static int pg_open(rp_db_t *db, const char *path, const rp_db_opts_t *o, rp_error_t *err)
{
    pg_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    db->conn = c;
    c->pg = PQconnectdb(path);
    if (!c->pg)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_msg(c, PQerrorMessage(c->pg));
        /* The message names the host and the reason, never the password. */
        return rp_error_set(err, RP_EIO, RP_C_OPEN, "cannot connect to PostgreSQL: %s",
                            c->msg);
    }
    /* Notices (an IF NOT EXISTS that found its table) are not errors: keep them off stderr. */
    PQsetNoticeProcessor(c->pg, NULL, NULL);
    const char *setup = o->read_only
                            ? "SET client_min_messages = warning;"
                              " SET default_transaction_read_only = on"
                            : o->sync_full ? "SET client_min_messages = warning;"
                                             " SET synchronous_commit = on"
                                           : "SET client_min_messages = warning";
    PGresult *r = PQexec(c->pg, setup);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fail(c, r);
        PQclear(r);
        return rp_error_set(err, RP_EIO, RP_C_OPEN, "cannot set up the PostgreSQL session: %s",
                            c->msg);
    }
    PQclear(r);
    return 0;
}

static void pg_close(rp_db_t *db)
{
    pg_conn_t *c = PC(db);
    if (c->pg)
        PQfinish(c->pg);
    free(c);
    db->conn = NULL;
}

static const char *pg_errmsg(rp_db_t *db)
{
    return db->conn ? PC(db)->msg : "no connection";
}

static int pg_exec(rp_db_t *db, const char *sql)
{
    pg_conn_t *c = PC(db);
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = RP_DB_OK;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        command_done(c, r);
    else
        rc = fail(c, r);
    PQclear(r);
    return rc;
}

static int64_t pg_changes(rp_db_t *db)
{
    return PC(db)->changes;
}

static int64_t pg_last_id(rp_db_t *db)
{
    pg_conn_t *c = PC(db);
    /* lastval() fails when no sequence was used yet in the session: inside a transaction that
     * failure would doom it, so it runs under a savepoint of its own there. */
    bool in = PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
    if (in)
        PQclear(PQexec(c->pg, "SAVEPOINT rp_lastval"));
    PGresult *r = PQexec(c->pg, "SELECT lastval()");
    int64_t id = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (in)
        PQclear(PQexec(c->pg, id ? "RELEASE rp_lastval"
                                 : "ROLLBACK TO rp_lastval; RELEASE rp_lastval"));
    return id;
}

static bool pg_in_txn(rp_db_t *db)
{
    PGTransactionStatusType t = PQtransactionStatus(PC(db)->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static uint32_t pg_data_version(rp_db_t *db)
{
    /* The server keeps no counter a session can read cheaply for another session's commits:
     * the version moves on every call, so whatever a caller caches by it is read again. */
    return ++PC(db)->version;
}

static const char *pg_path(rp_db_t *db)
{
    (void)db;
    return NULL; /* no file: backups are PostgreSQL's own tools' work */
}

static void pg_auto_checkpoint(rp_db_t *db, bool on)
{
    (void)db;
    (void)on; /* the server checkpoints by itself */
}

static int pg_checkpoint(rp_db_t *db, bool restart, int *pending)
{
    (void)db;
    (void)restart;
    if (pending)
        *pending = 0;
    return RP_DB_OK;
}

static bool pg_only_running(rp_db_t *db, rp_db_stmt_t *st)
{
    (void)db;
    (void)st;
    return true; /* a result is read whole before the next statement runs */
}

/* ---- statements ---------------------------------------------------------------------------- */

static void stmt_free(pg_stmt_t *s)
{
    for (int i = 0; s->names && i < s->nnames; i++)
        free(s->names[i]);
    for (int i = 0; s->values && i < s->nparams; i++)
        free(s->values[i]);
    free(s->names);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    PQclear(s->res);
    PQfreemem(s->blob);
    free(s);
}

/* The number a parameter named @p name (its length @p len, with its ':' '@' or '$') gets: the
 * one it already has, else the next. */
static int name_param(pg_stmt_t *s, const char *name, size_t len, int *next)
{
    for (int i = 0; i < *next; i++)
        if (s->names[i] && strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
            return i + 1;
    if (*next >= PG_MAX_PARAMS)
        return -1;
    s->names[*next] = strndup(name, len);
    if (!s->names[*next])
        return -1;
    s->nnames = *next + 1;
    return ++*next;
}

/* @p sql with SQLite's parameters written as $N, into a new string; s->nparams set. NULL when
 * a parameter is malformed or memory ran out. */
static char *rewrite(pg_stmt_t *s, const char *sql)
{
    size_t len = strlen(sql);
    /* Every parameter grows by at most 3 characters ("?" → "$999"). */
    char *out = malloc(len * 4 + 1);
    s->names = calloc(PG_MAX_PARAMS, sizeof *s->names);
    if (!out || !s->names) {
        free(out);
        return NULL;
    }
    size_t o = 0;
    int next = 0, top = 0;
    for (size_t i = 0; i < len;) {
        char ch = sql[i];
        if (ch == '\'' || ch == '"') {
            /* A literal or a quoted name, with its doubled quotes, copied as it is. */
            out[o++] = sql[i++];
            while (i < len) {
                out[o++] = sql[i];
                if (sql[i++] == ch) {
                    if (i < len && sql[i] == ch)
                        out[o++] = sql[i++];
                    else
                        break;
                }
            }
        } else if (ch == '-' && i + 1 < len && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                out[o++] = sql[i++];
        } else if (ch == '/' && i + 1 < len && sql[i + 1] == '*') {
            const char *end = strstr(sql + i + 2, "*/");
            size_t stop = end ? (size_t)(end - sql) + 2 : len;
            while (i < stop)
                out[o++] = sql[i++];
        } else if (ch == '?') {
            i++;
            int n;
            if (i < len && isdigit((unsigned char)sql[i])) {
                n = 0;
                while (i < len && isdigit((unsigned char)sql[i]) && n <= PG_MAX_PARAMS)
                    n = n * 10 + (sql[i++] - '0');
                if (n < 1 || n > PG_MAX_PARAMS)
                    goto bad;
                if (n > next)
                    next = n;
            } else {
                n = ++next;
                if (n > PG_MAX_PARAMS)
                    goto bad;
            }
            if (n > top)
                top = n;
            o += (size_t)sprintf(out + o, "$%d", n);
        } else if ((ch == ':' || ch == '@') && i + 1 < len &&
                   (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '_') &&
                   !(ch == ':' && i > 0 && sql[i - 1] == ':')) {
            /* A named parameter (":name"); "::" is PostgreSQL's cast and passes through. */
            size_t j = i + 1;
            while (j < len && (isalnum((unsigned char)sql[j]) || sql[j] == '_'))
                j++;
            int n = name_param(s, sql + i, j - i, &next);
            if (n < 0)
                goto bad;
            if (n > top)
                top = n;
            o += (size_t)sprintf(out + o, "$%d", n);
            i = j;
        } else {
            out[o++] = sql[i++];
        }
    }
    out[o] = '\0';
    s->nparams = top;
    return out;
bad:
    free(out);
    return NULL;
}

/* Whether @p sql only reads: it begins with SELECT, VALUES or SHOW (a WITH may write). */
static bool reads_only(const char *sql)
{
    while (isspace((unsigned char)*sql) || *sql == '(')
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0 || strncasecmp(sql, "VALUES", 6) == 0 ||
           strncasecmp(sql, "SHOW", 4) == 0;
}

static int pg_prepare(rp_db_t *db, const char *sql, bool keep, rp_db_stmt_t **out)
{
    (void)keep;
    pg_conn_t *c = PC(db);
    pg_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return RP_DB_NOMEM;
    s->row = -1;
    s->blob_col = -1;
    char *text = rewrite(s, sql);
    if (!text) {
        set_msg(c, "a parameter of the statement is malformed (or past 999)");
        stmt_free(s);
        return RP_DB_ERROR;
    }
    int n = s->nparams ? s->nparams : 1;
    s->values = calloc((size_t)n, sizeof *s->values);
    s->lengths = calloc((size_t)n, sizeof *s->lengths);
    s->formats = calloc((size_t)n, sizeof *s->formats);
    if (!s->values || !s->lengths || !s->formats) {
        free(text);
        stmt_free(s);
        return RP_DB_NOMEM;
    }
    snprintf(s->name, sizeof s->name, "rp_%llu", (unsigned long long)++c->next_id);
    PGresult *r = PQprepare(c->pg, s->name, text, s->nparams, NULL);
    free(text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int rc = fail(c, r);
        PQclear(r);
        stmt_free(s);
        return rc;
    }
    PQclear(r);
    s->readonly = reads_only(sql);
    *out = &s->base;
    return RP_DB_OK;
}

static void pg_finalize(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    pg_conn_t *c = st->db && st->db->conn ? PC(st->db) : NULL;
    if (c && PQstatus(c->pg) == CONNECTION_OK) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
        /* Inside a failed transaction the server refuses it; the name then lives until the
         * session ends, which is harmless. */
        PQclear(PQexec(c->pg, sql));
    }
    stmt_free(s);
}

/* Keeps @p v (@p len bytes) as parameter @p i; how as in rp_db_driver_t.bind_text. */
static int bind(pg_stmt_t *s, int i, const char *v, int len, int how, int format)
{
    if (i < 1 || i > s->nparams) {
        if (how == 2)
            free((void *)v);
        return RP_DB_ERROR;
    }
    char *copy = NULL;
    if (v) {
        if (len < 0)
            len = (int)strlen(v);
        copy = malloc((size_t)len + 1);
        if (!copy) {
            if (how == 2)
                free((void *)v);
            return RP_DB_NOMEM;
        }
        memcpy(copy, v, (size_t)len);
        copy[len] = '\0';
        if (how == 2)
            free((void *)v);
    }
    free(s->values[i - 1]);
    s->values[i - 1] = copy;
    s->lengths[i - 1] = v ? len : 0;
    s->formats[i - 1] = format;
    return RP_DB_OK;
}

static int pg_bind_int(rp_db_stmt_t *st, int i, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    return bind(PS(st), i, buf, n, 1, 0);
}

static int pg_bind_float(rp_db_stmt_t *st, int i, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    return bind(PS(st), i, buf, n, 1, 0);
}

static int pg_bind_text(rp_db_stmt_t *st, int i, const char *v, int len, int how)
{
    if (!v)
        return bind(PS(st), i, NULL, 0, 1, 0);
    /* PostgreSQL's text holds no NUL: the text ends at the first one, as SQLite's C string
     * readers would see it. */
    if (len >= 0) {
        const char *nul = memchr(v, '\0', (size_t)len);
        if (nul)
            len = (int)(nul - v);
    }
    return bind(PS(st), i, v, len, how, 0);
}

static int pg_bind_blob(rp_db_stmt_t *st, int i, const void *p, int len)
{
    return bind(PS(st), i, p ? p : "", p ? len : 0, 1, 1);
}

static int pg_bind_null(rp_db_stmt_t *st, int i)
{
    return bind(PS(st), i, NULL, 0, 1, 0);
}

static int pg_param_index(rp_db_stmt_t *st, const char *name)
{
    pg_stmt_t *s = PS(st);
    for (int i = 0; name && i < s->nparams; i++)
        if (s->names[i] && strcmp(s->names[i], name) == 0)
            return i + 1;
    return 0;
}

static int pg_step(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    pg_conn_t *c = PC(st->db);
    if (!s->res) {
        PGresult *r = PQexecPrepared(c->pg, s->name, s->nparams,
                                     (const char *const *)s->values, s->lengths, s->formats, 0);
        ExecStatusType t = PQresultStatus(r);
        if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK) {
            int rc = fail(c, r);
            PQclear(r);
            return rc;
        }
        if (t == PGRES_COMMAND_OK)
            command_done(c, r);
        s->res = r;
        s->row = -1;
    }
    PQfreemem(s->blob);
    s->blob = NULL;
    s->blob_col = -1;
    if (PQresultStatus(s->res) == PGRES_TUPLES_OK && s->row + 1 < PQntuples(s->res)) {
        s->row++;
        return RP_DB_ROW;
    }
    s->row = PQntuples(s->res);
    return RP_DB_DONE;
}

static void pg_reset(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    PQfreemem(s->blob);
    s->blob = NULL;
    s->blob_col = -1;
}

static void pg_clear(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    for (int i = 0; i < s->nparams; i++) {
        free(s->values[i]);
        s->values[i] = NULL;
        s->lengths[i] = 0;
        s->formats[i] = 0;
    }
}

static bool pg_busy(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    return s->res && PQresultStatus(s->res) == PGRES_TUPLES_OK && s->row >= 0 &&
           s->row < PQntuples(s->res);
}

static bool pg_readonly(rp_db_stmt_t *st)
{
    return PS(st)->readonly;
}

static int pg_col_count(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    return s->res ? PQnfields(s->res) : 0;
}

/* Whether row and column @p c can be read. */
static bool readable(pg_stmt_t *s, int c)
{
    return s->res && s->row >= 0 && s->row < PQntuples(s->res) && c >= 0 &&
           c < PQnfields(s->res);
}

static rp_db_type_t pg_col_type(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return RP_DB_NULL;
    switch (PQftype(s->res, c)) {
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return RP_DB_INTEGER;
    case OID_FLOAT4:
    case OID_FLOAT8:
        return RP_DB_FLOAT;
    case OID_BYTEA:
        return RP_DB_BLOB;
    default:
        return RP_DB_TEXT;
    }
}

static int64_t pg_col_int(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return 0;
    const char *v = PQgetvalue(s->res, s->row, c);
    if (PQftype(s->res, c) == OID_BOOL)
        return v[0] == 't';
    /* A float or numeric text reads as SQLite reads one: its integer part. */
    return PQftype(s->res, c) == OID_FLOAT4 || PQftype(s->res, c) == OID_FLOAT8
               ? (int64_t)strtod(v, NULL)
               : strtoll(v, NULL, 10);
}

static double pg_col_float(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return 0;
    const char *v = PQgetvalue(s->res, s->row, c);
    return PQftype(s->res, c) == OID_BOOL ? (v[0] == 't') : strtod(v, NULL);
}

static const char *pg_col_text(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return NULL;
    const char *v = PQgetvalue(s->res, s->row, c);
    if (PQftype(s->res, c) == OID_BOOL)
        return v[0] == 't' ? "1" : "0";
    return v;
}

static const void *pg_col_blob(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return NULL;
    if (PQftype(s->res, c) != OID_BYTEA)
        return PQgetvalue(s->res, s->row, c);
    if (s->blob_col != c) {
        PQfreemem(s->blob);
        s->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, c),
                                  &s->blob_len);
        s->blob_col = s->blob ? c : -1;
    }
    return s->blob;
}

static int pg_col_bytes(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c) || PQgetisnull(s->res, s->row, c))
        return 0;
    if (PQftype(s->res, c) == OID_BYTEA)
        return pg_col_blob(st, c) ? (int)s->blob_len : 0;
    if (PQftype(s->res, c) == OID_BOOL)
        return 1;
    return PQgetlength(s->res, s->row, c);
}

static const char *pg_col_name(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    return s->res && c >= 0 && c < PQnfields(s->res) ? PQfname(s->res, c) : NULL;
}

const rp_db_driver_t rp__db_pg = {
    .name = "postgresql",
    .begin_sql = "BEGIN",
    .has_table_sql = "SELECT 1 FROM information_schema.tables WHERE table_schema ="
                     " current_schema() AND table_name = ?",
    /* One snapshot for every statement until the read ends (READ COMMITTED takes one each). */
    .read_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ",
    /* PostgreSQL keeps no schema counter: every change to a table of the schema (created,
     * dropped, a column added, an index) rewrites its pg_class row, so the sum of those rows'
     * transaction ids moves with it. A vacuum moves it too, which costs a needless re-read. */
    .cookie_sql = "SELECT coalesce(sum(xmin::text::bigint), 0) % 2147483647 FROM pg_class"
                  " WHERE relnamespace = current_schema()::regnamespace",
    .open = pg_open,
    .close = pg_close,
    .errmsg = pg_errmsg,
    .exec = pg_exec,
    .changes = pg_changes,
    .last_id = pg_last_id,
    .in_txn = pg_in_txn,
    .data_version = pg_data_version,
    .path = pg_path,
    .auto_checkpoint = pg_auto_checkpoint,
    .checkpoint = pg_checkpoint,
    .only_running = pg_only_running,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_int = pg_bind_int,
    .bind_float = pg_bind_float,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .param_index = pg_param_index,
    .step = pg_step,
    .reset = pg_reset,
    .clear = pg_clear,
    .busy = pg_busy,
    .readonly = pg_readonly,
    .col_count = pg_col_count,
    .col_type = pg_col_type,
    .col_int = pg_col_int,
    .col_float = pg_col_float,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_bytes = pg_col_bytes,
    .col_name = pg_col_name,
};
