/*
 * replay_report.c — the writes of a replay and what it reports: each recorded event applied
 * again as the write it was, and what the script then did (records, events, jobs, failures)
 * taken from the copy's log into the report, ids told as the recorded history knows them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/db.h"
#include "rapport/events.h"
#include "rapport/time.h"

#include "replay_int.h"

static const char *const sections[] = {"created", "changed", "deleted", "restored", "emitted",
                                       "schema",  "hooks",   "jobs",    "messages", "errors",
                                       "notes",   NULL};

int rp__replay_init(replay_t *r, rp_error_t *err)
{
    const char *base = strrchr(r->o->script, '/');
    r->report = json_object();
    r->fwd = json_object();
    r->rev = json_object();
    r->refs = json_object();
    r->news = json_object();
    r->nnew = json_object();
    r->seqs = json_object();
    if (!r->report || !r->fwd || !r->rev || !r->refs || !r->news || !r->nnew || !r->seqs)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    json_object_set_new(r->report, "script", json_string(base ? base + 1 : r->o->script));
    for (int i = 0; sections[i]; i++)
        json_object_set_new(r->report, sections[i], json_array());
    return 0;
}

void rp__replay_free(replay_t *r)
{
    json_decref(r->report);
    json_decref(r->fwd);
    json_decref(r->rev);
    json_decref(r->refs);
    json_decref(r->news);
    json_decref(r->nnew);
    json_decref(r->seqs);
    json_decref(r->by);
}

static void add(replay_t *r, const char *section, json_t *item)
{
    rp__replay_count(r, item);
    json_array_append_new(json_object_get(r->report, section), item);
}

void rp__replay_note(replay_t *r, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    add(r, "notes", json_string(msg));
}

void rp__replay_trace(replay_t *r, const char *fmt, ...)
{
    if (!r->o->trace)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->o->trace(r->o->trace_ud, line);
}

static void trace_json(replay_t *r, const char *what, json_t *j)
{
    if (!r->o->trace)
        return;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    rp__replay_trace(r, "  %s %s", what, text ? text : "?");
    free(text);
}

static const char *verb_of(const char *type, const char *entity);

/* ---- ids: the copy's and the recorded history's --------------------------------------------- */

static json_t *map_get(json_t *map, const char *entity, int64_t id)
{
    char key[96];
    snprintf(key, sizeof key, "%s:%lld", entity, (long long)id);
    return json_object_get(map, key);
}

static void map_set(json_t *map, const char *entity, int64_t id, int64_t to)
{
    char key[96];
    snprintf(key, sizeof key, "%s:%lld", entity, (long long)id);
    json_object_set_new(map, key, json_integer(to));
}

/* The id in the copy of the record the history calls @p id. */
static int64_t copy_id(replay_t *r, const char *entity, int64_t id)
{
    json_t *v = map_get(r->fwd, entity, id);
    return v ? json_integer_value(v) : id;
}

/* The id the report gives the copy's record @p id (a new reference): the recorded one when a
 * replayed write made it, "new#N" when the script did (its Nth record of the entity: the
 * copy's own id could be a recorded record's), else its own (a record from before the window
 * keeps its id in the copy). */
static json_t *told(replay_t *r, const char *entity, int64_t id)
{
    json_t *n = map_get(r->news, entity, id);
    if (n)
        return json_sprintf("new#%lld", (long long)json_integer_value(n));
    json_t *v = map_get(r->rev, entity, id);
    return json_integer(v ? json_integer_value(v) : id);
}

/* Gives the record the script just created in the copy its label, in creation order. */
static void name_new(replay_t *r, const char *entity, int64_t id)
{
    if (map_get(r->news, entity, id) || map_get(r->rev, entity, id))
        return;
    int64_t n = json_integer_value(json_object_get(r->nnew, entity)) + 1;
    json_object_set_new(r->nnew, entity, json_integer(n));
    map_set(r->news, entity, id, n);
}

/* Names the script's records created up to record @p id of @p entity (a trace's line may name
 * it before the report takes its event): in the order of their events, as the report would. */
static void name_upto(replay_t *r, const char *entity, int64_t id)
{
    if (map_get(r->news, entity, id) || map_get(r->rev, entity, id))
        return;
    char type[160];
    snprintf(type, sizeof type, "%s.created", entity);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT entity, record_id, type FROM rp_events WHERE seq > ?1"
                                  " AND seq <= (SELECT max(seq) FROM rp_events WHERE seq > ?1"
                                  " AND entity = ?2 AND record_id = ?3 AND type = ?4)"
                                  " AND type LIKE '%.created' ORDER BY seq",
                                  NULL);
    if (!st)
        return;
    rp_db_bind_int(st, 1, r->mark);
    rp_db_bind_text(st, 2, entity, -1);
    rp_db_bind_int(st, 3, id);
    rp_db_bind_text(st, 4, type, -1);
    while (rp_db_step(st) == RP_DB_ROW) {
        const char *e = rp_db_col_text(st, 0);
        const char *verb = verb_of(rp_db_col_text(st, 2), e);
        if (verb && !strcmp(verb, "created"))
            name_new(r, e, rp_db_col_int(st, 1));
    }
    rp_db_reset(st);
}

void rp__replay_id_text(replay_t *r, const char *entity, int64_t id, char *out, size_t cap)
{
    name_upto(r, entity, id);
    json_t *v = told(r, entity, id);
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    json_decref(v);
}

void rp__replay_seq_text(replay_t *r, int64_t seq, char *out, size_t cap)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)seq);
    json_t *v = json_object_get(r->seqs, key);
    if (v)
        snprintf(out, cap, "#%lld", (long long)json_integer_value(v));
    else
        snprintf(out, cap, "seq %lld (the replay's own, not a recorded event)", (long long)seq);
}

/* The reference fields of @p entity and their targets (borrowed from r->refs). */
static json_t *refs_of(replay_t *r, const char *entity)
{
    json_t *m = json_object_get(r->refs, entity);
    if (m)
        return m;
    m = json_object();
    json_t *desc = rp_store_schema(r->s, entity, NULL);
    const char *k;
    json_t *f;
    json_object_foreach(json_object_get(desc, "fields"), k, f) {
        const char *type = json_string_value(json_object_get(f, "type"));
        const char *to = json_string_value(json_object_get(f, "ref"));
        if (type && !strcmp(type, "ref") && to)
            json_object_set_new(m, k, json_string(to));
    }
    json_decref(desc);
    json_object_set_new(r->refs, entity, m);
    return m;
}

/* Turns the reference values of @p obj ({field: id} or {field: [old, new]}) into the copy's
 * ids (@p to_copy) or into the ids the report tells. */
static void translate(replay_t *r, const char *entity, json_t *obj, bool to_copy)
{
    json_t *refs = refs_of(r, entity);
    const char *k;
    json_t *to;
    json_object_foreach(refs, k, to) {
        json_t *v = json_object_get(obj, k);
        const char *target = json_string_value(to);
        for (size_t i = 0; v && i < (json_is_array(v) ? json_array_size(v) : 1); i++) {
            json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
            if (!json_is_integer(x))
                continue;
            int64_t id = json_integer_value(x);
            json_t *to_id = to_copy ? json_integer(copy_id(r, target, id)) : told(r, target, id);
            if (!json_is_array(v)) {
                json_object_set_new(obj, k, to_id); /* frees v: nothing more to read */
                break;
            }
            json_array_set_new(v, i, to_id);
        }
    }
}

/* The new values of a change set {field: [old, new]}, without the system fields. */
static json_t *new_values(json_t *changes, bool drop_null)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v) {
        json_t *nv = json_array_get(v, 1);
        if (!nv || (drop_null && json_is_null(nv)))
            continue;
        json_object_set_new(o, k, json_deep_copy(nv));
    }
    return o;
}

static json_t *by_of_seq(replay_t *r, int64_t seq)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT type, entity, record_id FROM"
                                  " rp_replay_feed WHERE seq = ?1",
                                  NULL);
    json_t *by = NULL;
    if (st) {
        rp_db_bind_int(st, 1, seq);
        if (rp_db_step(st) == RP_DB_ROW)
            by = json_pack("{s:I,s:s,s:s,s:I}", "seq", (json_int_t)seq, "type",
                           rp_db_col_text(st, 0), "entity", rp_db_col_text(st, 1), "id",
                           (json_int_t)rp_db_col_int(st, 2));
        rp_db_reset(st);
    }
    return by ? by : json_null();
}

/* ---- collecting what the script did ---------------------------------------------------------- */

/* The record verb of @p type on @p entity ("created", …), or NULL for any other event. */
static const char *verb_of(const char *type, const char *entity)
{
    static const char *const verbs[] = {"created",  "updated", "deleted",
                                        "restored", "purged",  NULL};
    size_t n = strlen(entity);
    if (!n || strncmp(type, entity, n) != 0 || type[n] != '.')
        return NULL;
    for (int i = 0; verbs[i]; i++)
        if (!strcmp(type + n + 1, verbs[i]))
            return verbs[i];
    return NULL;
}

static void take_event(replay_t *r, json_t *by, const char *type, const char *entity, int64_t id,
                       const char *actor, const char *changes)
{
    json_t *ch = json_loads(changes ? changes : "{}", 0, NULL);
    if (!json_is_object(ch)) {
        json_decref(ch);
        ch = json_object();
    }
    const char *verb = verb_of(type, entity);
    json_t *item = json_pack("{s:O,s:s,s:s}", "by", by, "actor", actor, "type", type);
    if (verb && !strcmp(verb, "created"))
        name_new(r, entity, id); /* a replayed write's own create is never taken */
    if (verb)
        json_object_del(item, "type");
    json_object_set_new(item, "entity", json_string(entity));
    json_object_set_new(item, "id", id ? told(r, entity, id) : json_integer(0));
    /* A plugin's own values may be made up at random (a mail's Message-ID): only the names of
     * the fields it wrote are shown, so that the report is the same every run. */
    bool plugin = !strncmp(actor, "plugin:", 7);
    const char *section = !verb && !strncmp(type, "schema.", 7) ? "schema" : "emitted";
    if (!verb) {
        json_object_set_new(item, "payload", json_incref(ch));
    } else if (!strcmp(verb, "created")) {
        section = "created";
        json_t *v = new_values(ch, true);
        translate(r, entity, v, false);
        if (plugin) {
            json_t *names = json_array();
            const char *k;
            json_t *x;
            json_object_foreach(v, k, x) json_array_append_new(names, json_string(k));
            json_decref(v);
            v = names;
        }
        json_object_set_new(item, "fields", v);
    } else if (!strcmp(verb, "updated")) {
        section = "changed";
        translate(r, entity, ch, false);
        json_object_set_new(item, "changes", json_incref(ch));
    } else {
        section = !strcmp(verb, "restored") ? "restored" : "deleted";
        if (!strcmp(verb, "purged"))
            json_object_set_new(item, "purged", json_true());
    }
    char what[160], idt[48];
    json_t *idv = json_object_get(item, "id");
    if (json_is_string(idv))
        snprintf(idt, sizeof idt, "%s", json_string_value(idv));
    else
        snprintf(idt, sizeof idt, "%lld", (long long)json_integer_value(idv));
    snprintf(what, sizeof what, "%s %s %s:", verb ? verb : "emitted", verb ? entity : type, idt);
    trace_json(r, what,
               json_object_get(item, verb && strcmp(verb, "updated") ? "fields"
                                     : verb                          ? "changes"
                                                                     : "payload"));
    add(r, section, item);
    json_decref(ch);
}

/* Handlers that failed on the events just handled (a run allows one attempt: a failure goes
 * straight to the dead letters of the copy), and jobs of the script that failed. */
static int take_failures(replay_t *r, json_t *by, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(r->s);
    rp_db_stmt_t *st = rp_db_stmt(db, "SELECT subscriber, error FROM rp_dead ORDER BY id", err);
    if (!st)
        return err ? err->code : RP_EIO;
    int found = 0;
    while (rp_db_step(st) == RP_DB_ROW) {
        json_t *item = json_pack("{s:O,s:s,s:s}", "by", by, "handler", rp_db_col_text(st, 0),
                                 "error", rp_db_col_text(st, 1));
        rp__replay_trace(r, "  error in handler %s: %s", rp_db_col_text(st, 0),
                         rp_db_col_text(st, 1));
        add(r, "errors", item);
        found++;
    }
    rp_db_reset(st);
    st = rp_db_stmt(db,
                    "SELECT r.name, r.error, coalesce(j.cause, 0) FROM rp_jobs r LEFT JOIN"
                    " replay_jobs j ON j.id = r.id WHERE r.state = 'dead' ORDER BY j.rowid, r.id",
                    err);
    if (!st)
        return err ? err->code : RP_EIO;
    while (rp_db_step(st) == RP_DB_ROW) {
        const char *name = rp_db_col_text(st, 0);
        found++;
        if (!rp_sched_has_handler(r->e, name))
            continue; /* a plugin's job: listed as not run, not as a failure */
        json_t *item = json_pack("{s:o,s:s,s:s}", "by", by_of_seq(r, rp_db_col_int(st, 2)), "job",
                                 name, "error", rp_db_col_text(st, 1));
        rp__replay_trace(r, "  error in job %s: %s", name, rp_db_col_text(st, 1));
        add(r, "errors", item);
    }
    rp_db_reset(st);
    /* Told once: the letters go, the jobs stay (as failed) for the list of jobs. */
    static const char *const done[] = {
        "DELETE FROM rp_dead", "UPDATE rp_jobs SET state = 'failed' WHERE state = 'dead'", NULL};
    for (int i = 0; found && done[i]; i++) {
        if (!(st = rp_db_stmt(db, done[i], err)))
            return err ? err->code : RP_EIO;
        int src = rp_db_step(st);
        rp_db_reset(st);
        if (src != RP_DB_DONE)
            return rp_db_error(db, src, "cannot clear the failures told", err);
    }
    return 0;
}

int rp__replay_collect(replay_t *r, int64_t own, bool jobs, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(r->s);
    rp_db_stmt_t *st = rp_db_stmt(db,
                                  "SELECT seq, type, entity, record_id, actor, at, changes"
                                  " FROM rp_events WHERE seq > ?1 ORDER BY seq",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, r->mark);
    json_t *rows = json_array();
    int src;
    while ((src = rp_db_step(st)) == RP_DB_ROW)
        json_array_append_new(rows,
                              json_pack("[I,s,s,I,s,I,s]", (json_int_t)rp_db_col_int(st, 0),
                                        rp_db_col_text(st, 1), rp_db_col_text(st, 2),
                                        (json_int_t)rp_db_col_int(st, 3), rp_db_col_text(st, 4),
                                        (json_int_t)rp_db_col_int(st, 5), rp_db_col_text(st, 6)));
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        json_decref(rows);
        return rp_db_error(db, src, "cannot read the copy's events", err);
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        int64_t seq = json_integer_value(json_array_get(row, 0));
        r->mark = seq;
        if (seq == own)
            continue;
        const char *actor = json_string_value(json_array_get(row, 4));
        json_t *by;
        if (jobs) {
            char at[32];
            rp_time_format(json_integer_value(json_array_get(row, 5)), at);
            by = json_pack("{s:s,s:s}", "job", strncmp(actor, "job:", 4) ? actor : actor + 4, "at",
                           at);
        } else {
            by = json_incref(r->by ? r->by : json_null());
        }
        take_event(r, by, json_string_value(json_array_get(row, 1)),
                   json_string_value(json_array_get(row, 2)),
                   json_integer_value(json_array_get(row, 3)), actor,
                   json_string_value(json_array_get(row, 6)));
        json_decref(by);
    }
    json_decref(rows);
    int rc = take_failures(r, jobs ? json_null() : r->by ? r->by : json_null(), err);
    return rc ? rc : rp__replay_size_err(r, err);
}

/* ---- applying a recorded event ----------------------------------------------------------------
 */

/* The first segments of the types the engine writes itself: not writes to replay. */
static bool engine_type(const char *type)
{
    static const char *const kinds[] = {"auth",    "access", "token", "user",   "config", "schema",
                                        "webhook", "job",    "role",  "plugin", "script", NULL};
    size_t n = strcspn(type, ".");
    for (int i = 0; kinds[i]; i++)
        if (strlen(kinds[i]) == n && !strncmp(type, kinds[i], n))
            return true;
    return false;
}

/* The replayed write's own event in the copy, after @p mark, or 0. */
static int64_t own_event(replay_t *r, int64_t mark, const char *type, const char *entity,
                         int64_t id, json_t **changes)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT seq, changes FROM rp_events"
                                  " WHERE seq > ?1 AND type = ?2 AND"
                                  " entity = ?3 AND record_id = ?4"
                                  " ORDER BY seq DESC LIMIT 1",
                                  NULL);
    int64_t seq = 0;
    if (!st)
        return 0;
    rp_db_bind_int(st, 1, mark);
    rp_db_bind_text(st, 2, type, -1);
    rp_db_bind_text(st, 3, entity, -1);
    rp_db_bind_int(st, 4, id);
    if (rp_db_step(st) == RP_DB_ROW) {
        seq = rp_db_col_int(st, 0);
        *changes = json_loads(rp_db_col_text(st, 1), 0, NULL);
    }
    rp_db_reset(st);
    return seq;
}

/* The custom event emitted again after @p mark: the first of its type (no hook runs first). */
static int64_t emitted_again(replay_t *r, int64_t mark, const char *type)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT min(seq) FROM rp_events WHERE seq > ?1 AND type = ?2",
                                  NULL);
    int64_t seq = 0;
    if (!st)
        return 0;
    rp_db_bind_int(st, 1, mark);
    rp_db_bind_text(st, 2, type, -1);
    if (rp_db_step(st) == RP_DB_ROW)
        seq = rp_db_col_int(st, 0);
    rp_db_reset(st);
    return seq;
}

/* What the hooks made of the recorded change: {field: [as recorded, as written now]} for each
 * field whose new value differs. */
static json_t *hook_diff(replay_t *r, const char *entity, json_t *recorded, json_t *now)
{
    json_t *want = new_values(recorded, false), *got = new_values(now, false);
    translate(r, entity, got, false);
    json_t *diff = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(got, k, v) {
        json_t *w = json_object_get(want, k);
        if (!(w ? json_equal(w, v) : json_is_null(v)))
            json_object_set_new(diff, k, json_pack("[OO]", w ? w : json_null(), v));
    }
    json_object_foreach(want, k, v) {
        if (!json_object_get(got, k) && !json_is_null(v))
            json_object_set_new(diff, k, json_pack("[On]", v));
    }
    json_decref(want);
    json_decref(got);
    return diff;
}

static int write_again(replay_t *r, const rp_ctx_t *ctx, const char *type, const char *entity,
                       const char *verb, int64_t rid, int64_t *cid, json_t *ch, rp_error_t *werr)
{
    rp_store_t *s = r->s;
    if (!verb) {
        json_t *payload = json_is_object(ch) ? ch : NULL;
        return rp_events_emit(s, ctx, type, *entity ? entity : NULL, rid ? *cid : 0, payload, NULL,
                              werr);
    }
    if (!strcmp(verb, "created") || !strcmp(verb, "updated")) {
        json_t *fields = new_values(ch, !strcmp(verb, "created"));
        translate(r, entity, fields, true);
        int rc;
        if (!strcmp(verb, "created")) {
            int64_t id = 0;
            rc = rp_store_create(s, ctx, entity, fields, &id, werr);
            if (!rc) {
                map_set(r->fwd, entity, rid, id);
                map_set(r->rev, entity, id, rid);
                *cid = id;
            } else {
                map_set(r->fwd, entity, rid, 0); /* not in the replay: see rp__replay_apply */
            }
        } else {
            rc = rp_store_update(s, ctx, entity, *cid, fields, 0, NULL, werr);
        }
        json_decref(fields);
        return rc;
    }
    if (!strcmp(verb, "deleted"))
        return rp_store_delete(s, ctx, entity, *cid, werr);
    if (!strcmp(verb, "restored"))
        return rp_store_restore(s, ctx, entity, *cid, werr);
    return rp_store_purge(s, ctx, entity, *cid, werr);
}

int rp__replay_apply(replay_t *r, json_t *ev, rp_error_t *err)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *entity = json_string_value(json_object_get(ev, "entity"));
    int64_t seq = json_integer_value(json_object_get(ev, "seq"));
    int64_t rid = json_integer_value(json_object_get(ev, "record_id"));
    if (engine_type(type))
        return 1; /* the engine's own (schema, settings, users): not a write to replay */
    json_decref(r->by);
    r->by = json_pack("{s:I,s:s,s:s,s:I}", "seq", (json_int_t)seq, "type", type, "entity", entity,
                      "id", (json_int_t)rid);
    char at[32];
    rp_time_format(json_integer_value(json_object_get(ev, "at")), at);
    rp__replay_trace(r, "event #%lld %s %s %lld at %s by %s", (long long)seq, type, entity,
                     (long long)rid, at, json_string_value(json_object_get(ev, "actor")));
    rp_ctx_t ctx = {.actor = json_string_value(json_object_get(ev, "actor")),
                    .origin = json_string_value(json_object_get(ev, "origin"))};
    json_t *ch = json_loads(json_string_value(json_object_get(ev, "changes")), 0, NULL);
    const char *verb = verb_of(type, entity);
    int64_t cid = copy_id(r, entity, rid), mark = r->mark;
    rp_error_t werr = {0};
    int wrc;
    if (verb && rid && cid == 0)
        /* Its create was vetoed in this replay: the id may belong to another record here. */
        wrc = rp_error_set(&werr, RP_ENOTFOUND, RP_C_NO_RECORD,
                           "%s %lld is not in the replay: its create was vetoed or refused",
                           entity, (long long)rid);
    else {
        /* At the recorded time to the millisecond: a deleted_at one ms off is no hook's doing. */
        r->pin_at = json_integer_value(json_object_get(ev, "at"));
        wrc = write_again(r, &ctx, type, entity, verb, rid, &cid, ch, &werr);
        r->pin_at = 0;
    }
    int64_t own = 0;
    if (wrc) {
        bool veto = werr.msgcode == RP_C_VETO;
        add(r, "hooks", json_pack("{s:O,s:s}", "by", r->by, veto ? "vetoed" : "refused", werr.msg));
        rp__replay_trace(r, "  %s: %s", veto ? "vetoed" : "refused", werr.msg);
    } else if (verb) {
        json_t *now = NULL;
        own = own_event(r, mark, type, entity, cid, &now);
        json_t *diff = own && json_is_object(ch) ? hook_diff(r, entity, ch, now) : json_object();
        if (json_object_size(diff)) {
            add(r, "hooks", json_pack("{s:O,s:O}", "by", r->by, "changed", diff));
            trace_json(r, "hook changed the write:", diff);
        } else {
            rp__replay_trace(r, "  written as recorded");
        }
        json_decref(diff);
        json_decref(now);
    } else {
        /* A recorded custom event emitted again is the history's, not the script's. */
        own = emitted_again(r, mark, type);
    }
    if (own) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)own);
        json_object_set_new(r->seqs, key, json_integer(seq));
    }
    json_decref(ch);
    r->fed++;
    int rc = rp__replay_jobs_err(r, rp_sched_run_due(r->e, NULL, err), err);
    if (!rc)
        rc = rp__replay_events_err(r, false, err);
    return rc ? rc : rp__replay_collect(r, own, false, err);
}

/* ---- the end ----------------------------------------------------------------------------------
 */

/* A job that sends something out: by the naming rule plugins follow, its last name segment is
 * "send" or ends in "_send" (collaborative.mail_send, collaborative.sms_send). */
static bool sends(const char *name)
{
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    size_t n = strlen(last);
    return !strcmp(last, "send") || (n > 5 && !strcmp(last + n - 5, "_send"));
}

int rp__replay_finish(replay_t *r, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(r->s);
    rp_db_stmt_t *st = rp_db_stmt(db,
                                  "SELECT j.name, j.payload, j.due_at, j.cause,"
                                  " (SELECT state FROM rp_jobs WHERE id = j.id),"
                                  " j.created_by FROM replay_jobs j ORDER BY j.rowid",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    while (rp_db_step(st) == RP_DB_ROW) {
        const char *name = rp_db_col_text(st, 0);
        bool ours = rp_sched_has_handler(r->e, name);
        const char *state = rp_db_col_type(st, 4) == RP_DB_NULL ? "" : rp_db_col_text(st, 4);
        const char *status = !ours                       ? "not run"
                             : !strcmp(state, "pending") ? "pending"
                             : !strcmp(state, "failed")  ? "failed"
                                                         : "ran";
        char due[32];
        rp_time_format(rp_db_col_int(st, 2), due);
        json_t *payload = json_loads(rp_db_col_text(st, 1), 0, NULL);
        /* A cron schedule's job was caused by the time, not by the event before it. */
        bool cron = !strcmp(rp_db_col_text(st, 5) ? rp_db_col_text(st, 5) : "", "cron");
        json_t *item =
            json_pack("{s:s,s:o,s:s,s:s,s:o}", "name", name, "payload",
                      payload ? payload : json_object(), "due", due, "status", status, "by",
                      cron ? json_pack("{s:s,s:s}", "job", "cron", "at", due)
                           : by_of_seq(r, rp_db_col_int(st, 3)));
        if (!ours && sends(name))
            add(r, "messages", json_deep_copy(item));
        add(r, "jobs", item);
    }
    rp_db_reset(st);
    int rc = rp__replay_size_err(r, err);
    if (rc)
        return rc;
    char from[32] = "", to[32] = "";
    if (r->o->from_ms)
        rp_time_format(r->o->from_ms, from);
    if (r->o->to_ms)
        rp_time_format(r->o->to_ms, to);
    json_object_set_new(r->report, "window",
                        json_pack("{s:s?,s:s?,s:I,s:I,s:I,s:I}", "from", from[0] ? from : NULL,
                                  "to", to[0] ? to : NULL, "first_seq",
                                  (json_int_t)(r->start_seq + 1), "last_seq",
                                  (json_int_t)r->end_seq, "events", (json_int_t)r->fed, "skipped",
                                  (json_int_t)r->skipped));
    return 0;
}
