/*
 * erase.c — the commands of a person's data: `erase` (the right to be forgotten) and
 * `export-subject` (everything the engine holds about one record, as one JSON document).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/db.h"

#include "cli.h"

/* Folds the write-ahead log into the file and truncates it, so the pages written before the
 * erasure (which still hold the erased values) leave the -wal file too. Says so when a reader
 * holds it open and the log could not be emptied: a serving engine starts its log over in place
 * (sqlite.c, sq_checkpoint), so old pages stay in the file until written over or it closes. */
static void truncate_wal(rp_store_t *s)
{
    rp_db_stmt_t *st = rp_db_prepare(rp_store_db(s), "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
    if (!st)
        return;
    if (rp_db_step(st) == RP_DB_ROW && rp_db_col_int(st, 0) != 0)
        fprintf(stderr, "rapport: note: another process holds the database open, so its "
                        "write-ahead log may still hold pages from before the erasure until "
                        "that process closes the database or writes over them\n");
    rp_db_finalize(st);
}

int cmd_erase(cli_t *c, int argc, char **argv)
{
    const char *reason = flag_value(&argc, argv, "--reason", NULL);
    bool as_json = false;
    flag_value(&argc, argv, "--json", &as_json);
    if (reason == FLAG_MISSING)
        return usage_error("erase", "erase: --reason needs a text");
    if (reject_unknown_flags("erase", argc, argv))
        return EXIT_USAGE;
    int64_t id;
    if (argc != 3 || !parse_id(argv[2], &id))
        return usage_error("erase", "erase needs an entity and a record id");
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *res = NULL;
    int rc = 0;
    if (rp_store_erase(env.s, &c->ctx, argv[1], id, reason, &res, &err)) {
        rc = fail("%s", err.msg);
    } else if (as_json) {
        print_json(res, false);
    } else if (!json_is_true(json_object_get(res, "erased"))) {
        printf("%s %lld: no personal data left to erase (erased before?); nothing changed\n",
               argv[1], (long long)id);
    } else {
        char *fields = json_dumps(json_object_get(res, "fields"), JSON_COMPACT);
        char *recs = json_dumps(json_object_get(res, "records"), JSON_COMPACT);
        printf("erased %s %lld: fields %s; %lld events rewritten; referring records %s; "
               "%lld other events cleaned\n",
               argv[1], (long long)id, fields ? fields : "?",
               (long long)json_integer_value(json_object_get(res, "events")), recs ? recs : "?",
               (long long)json_integer_value(json_object_get(res, "other_events")));
        free(fields);
        free(recs);
    }
    if (!rc)
        truncate_wal(env.s);
    json_decref(res);
    env_close(&env);
    return rc;
}

int cmd_export_subject(cli_t *c, int argc, char **argv)
{
    bool pretty = false;
    flag_value(&argc, argv, "--pretty", &pretty);
    if (reject_unknown_flags("export-subject", argc, argv))
        return EXIT_USAGE;
    int64_t id;
    if (argc != 3 || !parse_id(argv[2], &id))
        return usage_error("export-subject", "export-subject needs an entity and a record id");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *doc = NULL;
    int rc = 0;
    if (rp_store_subject(s, &c->ctx, argv[1], id, &doc, &err))
        rc = fail("%s", err.msg);
    else
        print_json(doc, pretty);
    json_decref(doc);
    close_store(c, s);
    return rc;
}
