/*
 * pg.c — the server driver: the one file of Rapport that talks to PostgreSQL (libpq). It fills
 * the same rp_db_driver_t as the embedded driver, so the generic part of the room (db.c: the
 * statement cache, transaction levels, savepoints, the time budget) is the same on both.
 *
 * How it maps the interface:
 *   - SQL is written with SQLite's parameters (`?`, `?N`, `:name`); prepare rewrites them to
 *     `$N` once, outside string literals (E'…' and $$…$$ too), quoted names and comments,
 *     and keeps the names for rp_db_param_index;
 *   - a statement is prepared on the server under a name of its own (rp_<n>) and deallocated
 *     when finalized; parameters go as text (a blob as binary), results come back as text;
 *   - a step runs the statement at its first call and reads the whole result: libpq runs one
 *     statement at a time, and the store reads one statement while it writes with another;
 *   - a column's type comes from the result's type (int2/4/8 and bool integers, float4/8
 *     floats, numeric either by its value, bytea a blob, NULL, else text); SQLSTATE classes
 *     become RP_DB_* codes, and an error's message is its primary line (a DETAIL line would
 *     carry the row's values);
 *   - rp_db_last_id() is lastval(): the id a serial or identity column gave last in the
 *     session (after an explicit id or an upsert that updated, not SQLite's answer: callers
 *     that need it exact read `RETURNING id`);
 *   - inside a transaction each statement runs under a savepoint of the driver's own, rolled
 *     back when it fails, so that a failed statement is undone alone as on SQLite (PostgreSQL
 *     would refuse everything after it): two more round trips a statement;
 *   - a writer waits for another's lock as long as the busy timeout (lock_timeout), then gets
 *     RP_DB_BUSY; a statement whose table another connection changed is prepared again once.
 *
 * What it does not do yet (issue "Beyond one machine"): the store's own schemas and queries
 * are written for SQLite, so rp_db_open() refuses to migrate a PostgreSQL database; the time
 * budget does not cancel a running statement; a lost connection is not opened again; a
 * statement's columns are known only once it has run.
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
#define OID_NUMERIC 1700

/* PostgreSQL's own bound on a statement's parameters. */
#define PG_MAX_PARAMS 65535

typedef struct pg_stmt pg_stmt_t;

typedef struct pg_conn {
    PGconn *pg;
    char msg[512];    /* the last error: the server's primary message, one line */
    int64_t changes;  /* rows the last INSERT, UPDATE or DELETE changed */
    uint64_t next_id; /* the name of the next prepared statement */
    uint32_t version; /* moves on every call (see pg_data_version) */
    pg_stmt_t *live;  /* the statements prepared on it, which close detaches */
} pg_conn_t;

struct pg_stmt {
    rp_db_stmt_t base;
    pg_conn_t *c;       /* NULL once the connection closed */
    pg_stmt_t *prev, *next;
    char name[24];
    char *text;         /* the statement as the server was given it (to prepare it again) */
    int nparams;
    char **names;       /* a parameter's name (":x", "?3") or NULL, by number - 1 */
    Oid *types;         /* 0 for a parameter the text uses, text for one it skips */
    char **values;      /* owned copies of the bound values, NULL for SQL NULL */
    int *lengths;
    int *formats;       /* 1 for a binary (blob) value */
    bool readonly;
    bool control;       /* BEGIN, COMMIT, SAVEPOINT …: never run under a savepoint of ours */
    PGresult *res;      /* the result being read, NULL before the first step */
    int row;            /* the row the col_* calls read, -1 before the first */
    unsigned char **bytea; /* the current row's decoded bytea, by column, NUL-terminated */
    size_t *bytea_len;
    int nbytea;
};

#define PC(db) ((pg_conn_t *)(db)->conn)
#define PS(st) ((pg_stmt_t *)(st))

static void set_msg(pg_conn_t *c, const char *m)
{
    snprintf(c->msg, sizeof c->msg, "%s", m && *m ? m : "unknown PostgreSQL error");
    /* libpq's messages end in a newline; only the first line is kept (a DETAIL line would
     * carry the row's values). */
    c->msg[strcspn(c->msg, "\n")] = '\0';
    size_t n = strlen(c->msg);
    while (n && c->msg[n - 1] == ' ')
        c->msg[--n] = '\0';
}

/* RP_DB_* for a failed result, its primary message kept on the connection. */
static int fail(pg_conn_t *c, PGresult *r)
{
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_msg(c, primary ? primary : r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
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

/* Whether the command @p r reports changed rows (SQLite's changes() counts only these). */
static bool changes_rows(PGresult *r)
{
    const char *s = PQcmdStatus(r);
    return s && (strncmp(s, "INSERT", 6) == 0 || strncmp(s, "UPDATE", 6) == 0 ||
                 strncmp(s, "DELETE", 6) == 0 || strncmp(s, "MERGE", 5) == 0);
}

/* Notes what a command did. RP_DB_ERROR for a COMMIT (@p commit) the server turned into a
 * rollback because the transaction had failed: its work is not kept, and the caller is told. */
static int command_done(pg_conn_t *c, PGresult *r, bool commit)
{
    if (changes_rows(r))
        c->changes = strtoll(PQcmdTuples(r), NULL, 10);
    const char *status = PQcmdStatus(r);
    if (commit && status && strcmp(status, "ROLLBACK") == 0) {
        set_msg(c, "the transaction had failed: PostgreSQL rolled it back");
        return RP_DB_ERROR;
    }
    return RP_DB_OK;
}

/* Whether @p sql begins with one of @p words (a keyword, then not a name's character). */
static bool starts_with(const char *sql, const char *const *words, size_t n)
{
    while (isspace((unsigned char)*sql) || *sql == '(')
        sql++;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        if (strncasecmp(sql, words[i], len) == 0 && !isalnum((unsigned char)sql[len]) &&
            sql[len] != '_')
            return true;
    }
    return false;
}

static bool is_commit(const char *sql)
{
    static const char *const words[] = {"COMMIT", "END"};
    return starts_with(sql, words, 2);
}

/* Runs a statement of the driver's own (no parameters, no rows wanted); false on failure. */
static bool run(pg_conn_t *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* Whether @p sql is transaction control, which db.c runs for its levels. */
static bool is_control(const char *sql)
{
    static const char *const words[] = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
                                        "END", "START", "ABORT"};
    return starts_with(sql, words, sizeof words / sizeof *words);
}

/* Inside a transaction a failed statement makes PostgreSQL refuse everything after it until
 * a rollback, where SQLite undoes that statement alone and goes on. So a statement that runs
 * inside a transaction runs under a savepoint of the driver's own, rolled back when it fails:
 * the transaction then goes on as it would on SQLite. */
static bool guard_begin(pg_conn_t *c, bool control)
{
    return !control && PQtransactionStatus(c->pg) == PQTRANS_INTRANS &&
           run(c, "SAVEPOINT rp_stmt");
}

static void guard_end(pg_conn_t *c, bool guarded, bool failed)
{
    if (guarded)
        run(c, failed ? "ROLLBACK TO SAVEPOINT rp_stmt; RELEASE SAVEPOINT rp_stmt"
                      : "RELEASE SAVEPOINT rp_stmt");
}

/* libpq's notices (an IF NOT EXISTS that found its table, a COMMIT with none open) are not
 * errors: they are dropped, not printed on stderr. */
static void no_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int pg_open(rp_db_t *db, const char *path, const rp_db_opts_t *o, rp_error_t *err)
{
    pg_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    db->conn = c;
    /* libpq's message for a URI it cannot read quotes the URI, password and all: parsed
     * first, a malformed one is named without it. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(path, &perr);
    if (!opts) {
        PQfreemem(perr);
        return rp_error_set(err, RP_EINVAL, RP_C_OPEN,
                            "the PostgreSQL URI is malformed (postgresql://user@host/dbname?…; "
                            "a reserved character in the password must be %%-encoded)");
    }
    PQconninfoFree(opts);
    c->pg = PQconnectdb(path);
    if (!c->pg)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_msg(c, PQerrorMessage(c->pg));
        /* The message names the host and the reason, never the password. */
        return rp_error_set(err, RP_EIO, RP_C_OPEN, "cannot connect to PostgreSQL: %s",
                            c->msg);
    }
    PQsetNoticeProcessor(c->pg, no_notice, NULL);
    /* lock_timeout: a writer waits for another as long as on SQLite (RP_DB_BUSY after). */
    char setup[256];
    snprintf(setup, sizeof setup, "SET client_min_messages = warning; SET lock_timeout = %d%s",
             db->busy_ms,
             o->read_only   ? "; SET default_transaction_read_only = on"
             : o->sync_full ? "; SET synchronous_commit = on"
                            : "");
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
    /* A statement finalized after its connection closed frees only its own memory. */
    for (pg_stmt_t *s = c->live; s; s = s->next)
        s->c = NULL;
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
    bool guarded = guard_begin(c, is_control(sql));
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY
                 ? command_done(c, r, is_commit(sql))
                 : fail(c, r);
    PQclear(r);
    guard_end(c, guarded, rc != RP_DB_OK);
    return rc;
}

static int64_t pg_changes(rp_db_t *db)
{
    return PC(db)->changes;
}

static int64_t pg_last_id(rp_db_t *db)
{
    pg_conn_t *c = PC(db);
    /* lastval() fails when no sequence was used yet in the session: under the guard, that
     * failure leaves the transaction as it was. */
    bool guarded = guard_begin(c, false);
    PGresult *r = PQexec(c->pg, "SELECT lastval()");
    int64_t id = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    guard_end(c, guarded, id == 0);
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

static void bytea_clear(pg_stmt_t *s)
{
    for (int i = 0; i < s->nbytea; i++) {
        free(s->bytea[i]);
        s->bytea[i] = NULL;
    }
}

static void stmt_free(pg_stmt_t *s)
{
    for (int i = 0; s->names && i < s->nparams; i++)
        free(s->names[i]);
    for (int i = 0; s->values && i < s->nparams; i++)
        free(s->values[i]);
    free(s->names);
    free(s->types);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    free(s->text);
    PQclear(s->res);
    bytea_clear(s);
    free(s->bytea);
    free(s->bytea_len);
    free(s);
}

/* Gives parameter number @p n (from 1) the name @p name (@p len bytes) if it has none. */
static int name_param(pg_stmt_t *s, int n, const char *name, size_t len)
{
    if (!s->names[n - 1] && !(s->names[n - 1] = strndup(name, len)))
        return -1;
    return 0;
}

/* The number of the parameter named @p name (@p len bytes), 0 when none has it yet. */
static int named(pg_stmt_t *s, int top, const char *name, size_t len)
{
    for (int i = 0; i < top; i++)
        if (s->names[i] && strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
            return i + 1;
    return 0;
}

static bool name_char(unsigned char ch)
{
    return isalnum(ch) || ch == '_' || ch >= 0x80;
}

/* @p sql with SQLite's parameters (`?`, `?N`, `:name`, `@name`) written as $N, into a new
 * string; s->nparams, s->names and s->types set. Literals ('…', E'…' with its backslashes,
 * $tag$…$tag$), quoted names and comments are copied as they are. NULL when a parameter is
 * malformed or memory ran out. */
static char *rewrite(pg_stmt_t *s, const char *sql)
{
    size_t len = strlen(sql), marks = 0;
    for (size_t i = 0; i < len; i++)
        marks += sql[i] == '?' || sql[i] == ':' || sql[i] == '@';
    /* A parameter grows by at most 5 characters ("?" → "$65535"). */
    char *out = malloc(len + marks * 5 + 1);
    s->names = calloc(marks + 1, sizeof *s->names);
    bool *used = calloc(marks + 1, sizeof *used);
    if (!out || !s->names || !used)
        goto bad;
    size_t o = 0;
    int next = 0, top = 0;
    for (size_t i = 0; i < len;) {
        char ch = sql[i];
        if (ch == '\'' || ch == '"') {
            /* A literal or a quoted name, with its doubled quotes; after E, backslashes
             * escape. */
            bool esc = ch == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                       (i < 2 || !name_char((unsigned char)sql[i - 2]));
            out[o++] = sql[i++];
            while (i < len) {
                if (esc && sql[i] == '\\' && i + 1 < len) {
                    out[o++] = sql[i++];
                    out[o++] = sql[i++];
                    continue;
                }
                out[o++] = sql[i];
                if (sql[i++] == ch) {
                    if (i < len && sql[i] == ch)
                        out[o++] = sql[i++];
                    else
                        break;
                }
            }
        } else if (ch == '$' && (i == 0 || !name_char((unsigned char)sql[i - 1]))) {
            /* A dollar-quoted literal: $$…$$ or $tag$…$tag$. */
            size_t j = i + 1;
            while (j < len && name_char((unsigned char)sql[j]) && !isdigit((unsigned char)sql[i + 1]))
                j++;
            if (j < len && sql[j] == '$') {
                size_t tag = j + 1 - i;
                const char *end = NULL;
                for (const char *p = sql + j + 1; (p = strchr(p, '$')); p++)
                    if (strncmp(p, sql + i, tag) == 0) {
                        end = p;
                        break;
                    }
                size_t stop = end ? (size_t)(end - sql) + tag : len;
                while (i < stop)
                    out[o++] = sql[i++];
            } else {
                out[o++] = sql[i++];
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
            size_t from = i++;
            int n;
            if (i < len && isdigit((unsigned char)sql[i])) {
                long v = 0;
                while (i < len && isdigit((unsigned char)sql[i]) && v <= PG_MAX_PARAMS)
                    v = v * 10 + (sql[i++] - '0');
                if (v < 1 || v > PG_MAX_PARAMS || (size_t)v > marks)
                    goto bad;
                n = (int)v;
                if (name_param(s, n, sql + from, i - from))
                    goto bad;
            } else {
                n = next + 1;
                if (n > PG_MAX_PARAMS || (size_t)n > marks)
                    goto bad;
            }
            if (n > next)
                next = n;
            if (n > top)
                top = n;
            used[n - 1] = true;
            o += (size_t)sprintf(out + o, "$%d", n);
        } else if ((ch == ':' || ch == '@') && i + 1 < len && name_char((unsigned char)sql[i + 1]) &&
                   (i == 0 || (!name_char((unsigned char)sql[i - 1]) && sql[i - 1] != ':' &&
                               sql[i - 1] != ']'))) {
            /* A named parameter (":name"); "::" is PostgreSQL's cast and "a[1:n]" a slice,
             * and both pass through. */
            size_t j = i + 1;
            while (j < len && name_char((unsigned char)sql[j]))
                j++;
            int n = named(s, top, sql + i, j - i);
            if (!n) {
                n = next + 1;
                if (n > PG_MAX_PARAMS || (size_t)n > marks || name_param(s, n, sql + i, j - i))
                    goto bad;
                next = n;
            }
            if (n > top)
                top = n;
            used[n - 1] = true;
            o += (size_t)sprintf(out + o, "$%d", n);
            i = j;
        } else {
            out[o++] = sql[i++];
        }
    }
    out[o] = '\0';
    s->nparams = top;
    /* A number the text skips (SQLite's `?2` alone) is a parameter of type text, so that
     * PostgreSQL does not ask what type it is. */
    if (top && !(s->types = calloc((size_t)top, sizeof *s->types)))
        goto bad;
    for (int k = 0; k < top; k++)
        s->types[k] = used[k] ? 0 : 25; /* text */
    free(used);
    return out;
bad:
    s->nparams = (int)marks; /* so that every name given is freed */
    free(used);
    free(out);
    return NULL;
}

char *rp__pg_rewrite(const char *sql, int *nparams)
{
    pg_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    char *out = rewrite(s, sql);
    *nparams = out ? s->nparams : 0;
    stmt_free(s);
    return out;
}

/* Whether @p sql only reads: it begins with SELECT, VALUES or SHOW and locks no row (a WITH
 * may write). */
static bool reads_only(const char *sql)
{
    static const char *const words[] = {"SELECT", "VALUES", "SHOW"};
    return starts_with(sql, words, 3) && !strcasestr(sql, " FOR UPDATE") &&
           !strcasestr(sql, " FOR SHARE") && !strcasestr(sql, "nextval(");
}

/* Prepares s->text on the server under a new name. */
static int server_prepare(pg_conn_t *c, pg_stmt_t *s)
{
    snprintf(s->name, sizeof s->name, "rp_%llu", (unsigned long long)++c->next_id);
    PGresult *r = PQprepare(c->pg, s->name, s->text, s->nparams, s->types);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? RP_DB_OK : fail(c, r);
    PQclear(r);
    return rc;
}

static void deallocate(pg_conn_t *c, pg_stmt_t *s)
{
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
    /* Inside a failed transaction the server refuses it; the name then lives until the
     * session ends, which is harmless. */
    bool guarded = guard_begin(c, false);
    bool ok = run(c, sql);
    guard_end(c, guarded, !ok);
}

static int pg_prepare(rp_db_t *db, const char *sql, bool keep, rp_db_stmt_t **out)
{
    (void)keep;
    pg_conn_t *c = PC(db);
    pg_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return RP_DB_NOMEM;
    s->row = -1;
    if (!(s->text = rewrite(s, sql))) {
        set_msg(c, "a parameter of the statement is malformed (or past 65535)");
        stmt_free(s);
        return RP_DB_ERROR;
    }
    int n = s->nparams ? s->nparams : 1;
    s->values = calloc((size_t)n, sizeof *s->values);
    s->lengths = calloc((size_t)n, sizeof *s->lengths);
    s->formats = calloc((size_t)n, sizeof *s->formats);
    if (!s->values || !s->lengths || !s->formats) {
        stmt_free(s);
        return RP_DB_NOMEM;
    }
    s->control = is_control(sql);
    bool guarded = guard_begin(c, s->control);
    int rc = server_prepare(c, s);
    guard_end(c, guarded, rc != RP_DB_OK);
    if (rc) {
        stmt_free(s);
        return rc;
    }
    s->readonly = reads_only(sql);
    s->c = c;
    s->next = c->live;
    if (c->live)
        c->live->prev = s;
    c->live = s;
    *out = &s->base;
    return RP_DB_OK;
}

static void pg_finalize(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    pg_conn_t *c = s->c;
    if (c) {
        if (PQstatus(c->pg) == CONNECTION_OK)
            deallocate(c, s);
        if (s->prev)
            s->prev->next = s->next;
        else
            c->live = s->next;
        if (s->next)
            s->next->prev = s->prev;
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
    /* As on SQLite, a NULL pointer is SQL NULL. */
    return p ? bind(PS(st), i, p, len, 1, 1) : bind(PS(st), i, NULL, 0, 1, 0);
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

/* Runs the statement once: its whole result into s->res. */
static int execute(pg_conn_t *c, pg_stmt_t *s)
{
    for (int attempt = 0;; attempt++) {
        bool guarded = guard_begin(c, s->control);
        PGresult *r = PQexecPrepared(c->pg, s->name, s->nparams,
                                     (const char *const *)s->values, s->lengths, s->formats, 0);
        ExecStatusType t = PQresultStatus(r);
        int rc = RP_DB_OK;
        if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
            rc = command_done(c, r, t == PGRES_COMMAND_OK && is_commit(s->text));
        } else {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            /* Another connection changed a table this statement reads ("cached plan must
             * not change result type"): SQLite prepares again by itself, and so do we,
             * once. */
            bool stale = state && strcmp(state, "0A000") == 0 && attempt == 0 && !s->control;
            rc = fail(c, r);
            guard_end(c, guarded, true);
            PQclear(r);
            if (stale) {
                deallocate(c, s);
                guarded = guard_begin(c, false);
                int prc = server_prepare(c, s);
                guard_end(c, guarded, prc != RP_DB_OK);
                if (prc == RP_DB_OK)
                    continue;
                return prc;
            }
            return rc;
        }
        guard_end(c, guarded, rc != RP_DB_OK);
        if (rc) {
            PQclear(r);
            return rc;
        }
        s->res = r;
        s->row = -1;
        return RP_DB_OK;
    }
}

static int pg_step(rp_db_stmt_t *st)
{
    pg_stmt_t *s = PS(st);
    if (!s->c)
        return RP_DB_MISUSE;
    /* A step after the end runs the statement again, as SQLite's does. */
    if (s->res && s->row >= PQntuples(s->res)) {
        PQclear(s->res);
        s->res = NULL;
    }
    if (!s->res) {
        int rc = execute(s->c, s);
        if (rc)
            return rc;
    }
    bytea_clear(s);
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
    bytea_clear(s);
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
    return s->res && s->row >= 0 && s->row < PQntuples(s->res);
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

/* Whether row and column @p c can be read and hold a value. */
static bool readable(pg_stmt_t *s, int c)
{
    return s->res && s->row >= 0 && s->row < PQntuples(s->res) && c >= 0 &&
           c < PQnfields(s->res) && !PQgetisnull(s->res, s->row, c);
}

/* Whether the text @p v of a numeric is a whole number. */
static bool whole(const char *v)
{
    return !strpbrk(v, ".eEN"); /* N: NaN */
}

static rp_db_type_t pg_col_type(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
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
    case OID_NUMERIC:
        return whole(PQgetvalue(s->res, s->row, c)) ? RP_DB_INTEGER : RP_DB_FLOAT;
    case OID_BYTEA:
        return RP_DB_BLOB;
    default:
        return RP_DB_TEXT;
    }
}

/* A double as SQLite turns one into an integer: clamped to the range, NaN as 0. */
static int64_t clamp(double d)
{
    if (d != d)
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

static int64_t pg_col_int(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
        return 0;
    const char *v = PQgetvalue(s->res, s->row, c);
    Oid type = PQftype(s->res, c);
    if (type == OID_BOOL)
        return v[0] == 't';
    if (type == OID_FLOAT4 || type == OID_FLOAT8 || (type == OID_NUMERIC && !whole(v)))
        return clamp(strtod(v, NULL));
    errno = 0;
    long long n = strtoll(v, NULL, 10);
    return errno == ERANGE ? clamp(strtod(v, NULL)) : n;
}

static double pg_col_float(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
        return 0;
    const char *v = PQgetvalue(s->res, s->row, c);
    return PQftype(s->res, c) == OID_BOOL ? (v[0] == 't') : strtod(v, NULL);
}

/* The decoded bytes of bytea column @p c of the current row, NUL-terminated, kept until the
 * next step or reset (every column its own, as SQLite keeps them). */
static const unsigned char *bytea(pg_stmt_t *s, int c)
{
    if (!s->bytea) {
        int n = PQnfields(s->res);
        s->bytea = calloc((size_t)n, sizeof *s->bytea);
        s->bytea_len = calloc((size_t)n, sizeof *s->bytea_len);
        if (!s->bytea || !s->bytea_len) {
            free(s->bytea);
            free(s->bytea_len);
            s->bytea = NULL;
            s->bytea_len = NULL;
            return NULL;
        }
        s->nbytea = n;
    }
    if (!s->bytea[c]) {
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, c),
                                             &len);
        if (!raw)
            return NULL;
        unsigned char *copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, raw, len);
            copy[len] = '\0';
            s->bytea[c] = copy;
            s->bytea_len[c] = len;
        }
        PQfreemem(raw);
    }
    return s->bytea[c];
}

static const char *pg_col_text(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
        return NULL;
    Oid type = PQftype(s->res, c);
    if (type == OID_BYTEA)
        return (const char *)bytea(s, c);
    const char *v = PQgetvalue(s->res, s->row, c);
    if (type == OID_BOOL)
        return v[0] == 't' ? "1" : "0";
    return v;
}

static const void *pg_col_blob(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
        return NULL;
    return PQftype(s->res, c) == OID_BYTEA ? (const void *)bytea(s, c)
                                           : (const void *)pg_col_text(st, c);
}

static int pg_col_bytes(rp_db_stmt_t *st, int c)
{
    pg_stmt_t *s = PS(st);
    if (!readable(s, c))
        return 0;
    if (PQftype(s->res, c) == OID_BYTEA)
        return bytea(s, c) ? (int)s->bytea_len[c] : 0;
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
