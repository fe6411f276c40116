/*
 * schema.c — the schema registry: every module declares its own ordered steps beside its code
 * (RP_DB_SCHEMA), and opening a file takes each module from the version the file has to the
 * newest one, all in one transaction. A module's version lives in rp_meta under
 * "schema.<module>". Files of releases that kept one number for the whole core
 * ("schema_version", 1 to 4) are read through each schema's legacy table.
 */
#include <stdio.h>
#include <string.h>

#include "driver.h"

#define MAX_SCHEMAS 32

static const rp_db_schema_t *schemas[MAX_SCHEMAS];
static int nschemas;

/* The release-wide number the core kept before each module had its own: still written, so a
 * release of that time opens a file of this one (the tables it knows are unchanged). */
#define LEGACY_VERSION 4

void rp_db_schema_register(const rp_db_schema_t *schema)
{
    for (int i = 0; i < nschemas; i++)
        if (schemas[i] == schema || strcmp(schemas[i]->module, schema->module) == 0)
            return;
    if (nschemas < MAX_SCHEMAS)
        schemas[nschemas++] = schema;
}

/* One integer from rp_meta, 0 when the key or the table is absent. */
static int meta_int(rp_db_t *db, const char *key, rp_error_t *err, int *out)
{
    *out = 0;
    rp_db_stmt_t *st = rp_db_prepare(db, db->drv->has_table_sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, "rp_meta", -1);
    int rc = rp_db_step(st);
    rp_db_finalize(st);
    if (rc == RP_DB_DONE)
        return 0;
    if (rc != RP_DB_ROW)
        return rp_db_error(db, rc, "cannot read the database", err);
    if (!(st = rp_db_prepare(db, "SELECT value FROM rp_meta WHERE key = ?", err)))
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, key, -1);
    if ((rc = rp_db_step(st)) == RP_DB_ROW)
        *out = (int)rp_db_col_int(st, 0);
    rp_db_finalize(st);
    return rc == RP_DB_ROW || rc == RP_DB_DONE ? 0
                                                : rp_db_error(db, rc, "cannot read rp_meta", err);
}

static int meta_set(rp_db_t *db, const char *key, const char *value, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(db, "INSERT INTO rp_meta(key, value) VALUES(?1, ?2)"
                                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, key, -1);
    rp_db_bind_text(st, 2, value, -1);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(db, rc, "cannot record the schema version", err);
}

/* Whether the file keeps each module's version (else it is of the release-wide numbering). */
static int has_module_keys(rp_db_t *db, bool *yes, rp_error_t *err)
{
    *yes = false;
    int legacy;
    int rc = meta_int(db, "schema_version", err, &legacy); /* also: is there an rp_meta? */
    if (rc || !legacy)
        return rc;
    rp_db_stmt_t *st = rp_db_prepare(db, "SELECT 1 FROM rp_meta WHERE key LIKE 'schema.%'", err);
    if (!st)
        return err ? err->code : RP_EIO;
    *yes = rp_db_step(st) == RP_DB_ROW;
    rp_db_finalize(st);
    return 0;
}

/* The version of @p s in the file: its own key; in a file of the release-wide numbering, what
 * that number meant for it. A module missing from a file that keeps keys is new there. */
static int found_version(rp_db_t *db, const rp_db_schema_t *s, int legacy, bool keys,
                         rp_error_t *err, int *out)
{
    char key[80];
    snprintf(key, sizeof key, "schema.%s", s->module);
    int rc = meta_int(db, key, err, out);
    if (rc || *out || keys)
        return rc;
    if (legacy > 0 && s->legacy)
        *out = s->legacy[(legacy <= s->nlegacy ? legacy : s->nlegacy) - 1];
    return 0;
}

static void remember(rp_db_t *db, const char *module, int version)
{
    if (db->nfound < (int)(sizeof db->found / sizeof *db->found)) {
        db->found[db->nfound].module = module;
        db->found[db->nfound].version = version;
        db->nfound++;
    }
}

int rp__db_migrate(rp_db_t *db, rp_error_t *err)
{
    int legacy, rc = meta_int(db, "schema_version", err, &legacy);
    if (rc)
        return rc;
    db->legacy_found = legacy;
    bool keys;
    if ((rc = has_module_keys(db, &keys, err)))
        return rc;
    /* The release-wide number this build writes when every module is at its newest (below):
     * a file with a larger one was written by a newer build. */
    int newest = LEGACY_VERSION;
    for (int i = 0; i < nschemas; i++)
        if (schemas[i]->legacy)
            newest += schemas[i]->nsteps - 1;
    if (legacy > newest)
        return rp_error_set(err, RP_EVERSION, RP_C_NEWER,
                            "this database has schema version %d, written by a newer Rapport; "
                            "this build (" RP_VERSION ") understands up to version %d",
                            legacy, newest);
    int have[MAX_SCHEMAS];
    bool todo = legacy == 0;
    for (int i = 0; i < nschemas; i++) {
        if ((rc = found_version(db, schemas[i], legacy, keys, err, &have[i])))
            return rc;
        const rp_db_schema_t *s = schemas[i];
        if (have[i] > s->nsteps)
            return rp_error_set(err, RP_EVERSION, RP_C_NEWER,
                                "this database has version %d of the %s tables, written by a "
                                "newer Rapport; this build (" RP_VERSION ") understands up to "
                                "version %d", have[i], s->module, s->nsteps);
        remember(db, s->module, have[i]);
        todo = todo || have[i] < s->nsteps;
    }
    if (!todo)
        return 0;
    if ((rc = rp_db_exec(db, db->drv->begin_sql, err)))
        return rc;
    rc = rp_db_exec(db, "CREATE TABLE IF NOT EXISTS rp_meta(key TEXT PRIMARY KEY,"
                        " value TEXT NOT NULL) WITHOUT ROWID", err);
    /* The release-wide number goes on being written for the releases that read only it: 4,
     * plus every step a core module (one with a legacy table) took since, so that such a
     * release refuses a file whose core tables it no longer knows. */
    int marker = LEGACY_VERSION;
    for (int i = 0; i < nschemas && !rc; i++) {
        const rp_db_schema_t *s = schemas[i];
        for (int v = have[i]; v < s->nsteps && !rc; v++)
            rc = rp_db_exec(db, s->steps[v].sql, err);
        char key[80], val[16];
        snprintf(key, sizeof key, "schema.%s", s->module);
        snprintf(val, sizeof val, "%d", s->nsteps);
        if (!rc)
            rc = meta_set(db, key, val, err);
        if (s->legacy)
            marker += s->nsteps - 1;
    }
    char mark[16];
    snprintf(mark, sizeof mark, "%d", marker > legacy ? marker : legacy);
    if (!rc)
        rc = meta_set(db, "schema_version", mark, err);
    if (!rc)
        rc = meta_set(db, "written_by", "rapport " RP_VERSION, err);
    if (!rc)
        rc = rp_db_exec(db, "COMMIT", err);
    if (rc)
        db->drv->exec(db, "ROLLBACK");
    /* The cache held statements prepared against the old schema. */
    rp_db_flush(db);
    return rc;
}

int rp_db_schema_found(const rp_db_t *db, const char *module)
{
    if (!module)
        return db->legacy_found;
    for (int i = 0; i < db->nfound; i++)
        if (strcmp(db->found[i].module, module) == 0)
            return db->found[i].version;
    return 0;
}

int rp_db_schema_version(rp_db_t *db, const char *module)
{
    char key[80];
    snprintf(key, sizeof key, "schema.%s", module);
    int v = 0;
    rp_error_t ignored;
    meta_int(db, key, &ignored, &v);
    return v;
}
