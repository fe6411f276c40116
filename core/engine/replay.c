/*
 * replay.c — `rapport replay`: one script run over recorded history on a private copy of the
 * database, brought back to the window's start by undoing the later events, then driven event
 * by event on the virtual clock. Collects only what the script caused. The report is made in
 * replay_report.c; this file makes the copy and drives it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rapport/db.h"
#include "rapport/replay.h"
#include "rapport/settings.h"
#include "rapport/time.h"

#include "private.h"
#include "replay_int.h"

#define DIR_PREFIX "rapport-replay-"

/* ---- the private copy ----------------------------------------------------------------------- */

/* Removes the copy in folder @p name of @p tmp, opened without following a link, when it is
 * a real folder of ours, private (0700) as mkdtemp made it: another user's link or folder by
 * that name must not make a replay delete anything. */
static void remove_stale(int tmpfd, const char *name)
{
    int fd = openat(tmpfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
        (st.st_mode & 07777) == 0700) {
        static const char *const files[] = {"copy.db", "copy.db-wal", "copy.db-shm",
                                            "copy.db-journal", NULL};
        for (int i = 0; files[i]; i++)
            unlinkat(fd, files[i], 0); /* a link among them goes, never what it names */
        unlinkat(tmpfd, name, AT_REMOVEDIR);
    }
    close(fd);
}

/* Removes the folders of replays whose process is gone (killed mid-replay): their copy is
 * nobody's, and the folder name carries the pid that made it. */
static void sweep_stale(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, DIR_PREFIX, strlen(DIR_PREFIX)) != 0)
            continue;
        long pid = strtol(de->d_name + strlen(DIR_PREFIX), NULL, 10);
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            continue;
        remove_stale(dirfd(d), de->d_name);
    }
    closedir(d);
}

static int make_dir(replay_t *r, rp_error_t *err)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    sweep_stale(tmp);
    snprintf(r->dir, sizeof r->dir, "%s/" DIR_PREFIX "%ld-XXXXXX", tmp, (long)getpid());
    /* mkdtemp makes the folder 0700: the copy holds the whole database. */
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        return rp_error_set(err, RP_EIO, 0, "cannot make a private folder for the copy in %s: %s",
                            tmp, strerror(errno));
    }
    snprintf(r->path, sizeof r->path, "%s/copy.db", r->dir);
    return 0;
}

static void remove_dir(replay_t *r)
{
    if (!r->dir[0])
        return;
    rp_db_remove(r->path);
    rmdir(r->dir);
    r->dir[0] = '\0';
}

/* The file's bytes into @p to (0600). */
static int copy_bytes(const char *from, const char *to, rp_error_t *err)
{
    FILE *in = fopen(from, "rb");
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int rc = 0;
    if (!in || !out) {
        rc = rp_error_set(err, RP_EIO, 0, "cannot copy %s to %s: %s", from, to, strerror(errno));
    } else {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n)
                break;
        if (ferror(in) || ferror(out))
            rc = rp_error_set(err, RP_EIO, 0, "cannot copy %s to %s", from, to);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    else if (fd >= 0)
        close(fd);
    return rc;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int copy_live(replay_t *r, rp_error_t *err)
{
    struct stat before, after, wal;
    if (stat(r->o->db, &before) != 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_OPEN, "no database at %s", r->o->db);
    char log[4200];
    snprintf(log, sizeof log, "%s-wal", r->o->db);
    if (stat(log, &wal) != 0) {
        /* Nobody has the database open (the last connection folds its log back and removes
         * it): its bytes are the whole database, and copying them leaves nothing beside it,
         * not even the empty log and shared memory a reader's connection would make. Had a
         * writer come and gone meanwhile, the file's size or time shows it: then as below. */
        int rc = copy_bytes(r->o->db, r->path, err);
        if (!rc && stat(r->o->db, &after) == 0 && same_stat(&before, &after) &&
            stat(log, &wal) != 0)
            return 0;
        rp_db_remove(r->path);
        if (rc)
            return rc;
    }
    /* In use: SQLite's online backup reads one snapshot while writers go on. */
    rp_db_t *src = NULL;
    int rc = rp_db_open_file(r->o->db, false, &src, err);
    if (!rc)
        rc = rp_db_copy(src, r->path, NULL, err);
    rp_db_close(src);
    return rc;
}

static int64_t one_int(rp_db_t *db, const char *sql, int64_t a, rp_error_t *err, int *rc)
{
    rp_db_stmt_t *st = rp_db_stmt(db, sql, err);
    if (!st) {
        *rc = err ? err->code : RP_EIO;
        return 0;
    }
    rp_db_bind_int(st, 1, a);
    int64_t v = 0;
    int src = rp_db_step(st);
    if (src == RP_DB_ROW)
        v = rp_db_col_int(st, 0);
    else if (src != RP_DB_DONE)
        *rc = rp_db_error(db, src, "cannot read the event log of the copy", err);
    rp_db_reset(st);
    return v;
}

/* Where the window starts and ends, as sequence numbers of the log. */
static int find_window(replay_t *r, rp_db_t *db, rp_error_t *err)
{
    int rc = 0;
    int64_t last =
        one_int(db, "SELECT coalesce(max(seq), 0) FROM rp_events WHERE ?1 = ?1", 0, err, &rc);
    if (r->o->event_seq > 0) {
        if (!one_int(db, "SELECT count(*) FROM rp_events WHERE seq = ?1", r->o->event_seq, err,
                     &rc) &&
            !rc)
            return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD,
                                "--event %lld: no such event in the log (the newest is %lld)",
                                (long long)r->o->event_seq, (long long)last);
        r->start_seq = r->o->event_seq - 1;
        r->end_seq = r->o->event_seq;
        return rc;
    }
    r->start_seq = r->o->from_ms ? one_int(db,
                                           "SELECT coalesce(max(seq), 0) FROM rp_events"
                                           " WHERE at < ?1",
                                           r->o->from_ms, err, &rc)
                                 : 0;
    r->end_seq = r->o->to_ms ? one_int(db,
                                       "SELECT coalesce(max(seq), 0) FROM rp_events"
                                       " WHERE at < ?1",
                                       r->o->to_ms, err, &rc)
                             : last;
    if (r->end_seq < r->start_seq)
        r->end_seq = r->start_seq;
    return rc;
}

/* Undoes every record event after the window's start, newest first, in pages. */
static int unwind(replay_t *r, rp_store_t *s, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(s);
    int rc = rp_store_begin(s, err);
    int64_t cursor = INT64_MAX, undone = 0;
    bool schema_noted = false;
    while (!rc) {
        rp_db_stmt_t *st = rp_db_stmt(db,
                                      "SELECT seq, type, entity, record_id, changes"
                                      " FROM rp_events WHERE seq > ?1 AND seq < ?2"
                                      " ORDER BY seq DESC LIMIT 512",
                                      err);
        if (!st) {
            rc = err ? err->code : RP_EIO;
            break;
        }
        rp_db_bind_int(st, 1, r->start_seq);
        rp_db_bind_int(st, 2, cursor);
        json_t *page = json_array();
        int src;
        while ((src = rp_db_step(st)) == RP_DB_ROW)
            json_array_append_new(page, json_pack("[I,s,s,I,s]", (json_int_t)rp_db_col_int(st, 0),
                                                  rp_db_col_text(st, 1), rp_db_col_text(st, 2),
                                                  (json_int_t)rp_db_col_int(st, 3),
                                                  rp_db_col_text(st, 4)));
        rp_db_reset(st);
        if (src != RP_DB_DONE)
            rc = rp_db_error(db, src, "cannot read the event log of the copy", err);
        size_t i;
        json_t *ev;
        json_array_foreach(page, i, ev) {
            if (rc)
                break;
            cursor = json_integer_value(json_array_get(ev, 0));
            const char *type = json_string_value(json_array_get(ev, 1));
            rp_error_t uerr = {0};
            int u = rp_store_undo(s, cursor, type, json_string_value(json_array_get(ev, 2)),
                                  json_integer_value(json_array_get(ev, 3)),
                                  json_string_value(json_array_get(ev, 4)), &uerr);
            if (u == 0) {
                undone++;
            } else if (u < 0) {
                rp__replay_note(r,
                                "event %lld (%s) could not be undone, so the copy differs "
                                "from the database of that time: %s",
                                (long long)cursor, type, uerr.msg);
            } else if (!schema_noted && !strncmp(type, "schema.", 7)) {
                schema_noted = true;
                rp__replay_note(r,
                                "schema changes after the window's start (event %lld, %s) "
                                "are not undone: the copy has the newer entities and fields",
                                (long long)cursor, type);
            }
        }
        size_t n = json_array_size(page);
        json_decref(page);
        if (n == 0)
            break;
    }
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    r->undone = undone;
    return rp_store_commit(s, err);
}

/* Events missing from the log (seq has gaps only where events were removed): what the copy
 * cannot know, said in the report. */
static int note_gaps(replay_t *r, rp_db_t *db, rp_error_t *err)
{
    int rc = 0;
    int64_t n =
        one_int(db, "SELECT count(*) FROM rp_events WHERE seq > ?1", r->start_seq, err, &rc);
    int64_t hi = one_int(db, "SELECT coalesce(max(seq), 0) FROM rp_events WHERE seq > ?1",
                         r->start_seq, err, &rc);
    if (!rc && hi > r->start_seq && n != hi - r->start_seq)
        rp__replay_note(r,
                        "%lld events after the window's start are missing from the log "
                        "(removed): their changes cannot be undone or replayed",
                        (long long)(hi - r->start_seq - n));
    return rc;
}

/* The copy, prepared: history undone to the window's start, the window's events moved to the
 * feed table, the log cut there, and no jobs, schedules or retries of the live engine. */
static int prepare_copy(replay_t *r, rp_error_t *err)
{
    int rc = make_dir(r, err);
    if (!rc)
        rc = copy_live(r, err);
    rp_store_t *s = NULL;
    rp_store_opts_t so = {.must_exist = true};
    if (!rc)
        rc = rp_store_open(r->path, &so, &s, err);
    if (rc) {
        rp_store_close(s);
        return rc;
    }
    rp_db_t *db = rp_store_db(s);
    if (r->o->entity && !rp_store_has_entity(s, r->o->entity))
        rc = rp_error_field(err, "entity",
                            rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY,
                                         "--entity %s: no such entity in %s", r->o->entity,
                                         r->o->db));
    if (!rc && !(rc = find_window(r, db, err)) && !(rc = note_gaps(r, db, err)))
        rc = unwind(r, s, err);
    static const char *const setup[] = {
        "CREATE TABLE rp_replay_feed(seq INTEGER PRIMARY KEY, type TEXT, entity TEXT,"
        " record_id INTEGER, actor TEXT, origin TEXT, at INTEGER, changes TEXT)",
        "INSERT INTO rp_replay_feed SELECT seq, type, entity, record_id, actor, origin, at,"
        " changes FROM rp_events WHERE seq > ?1 AND seq <= ?2",
        "DELETE FROM rp_events WHERE seq > ?1 AND ?2 = ?2",
        "DELETE FROM rp_jobs WHERE ?1 = ?1 AND ?2 = ?2",
        "DELETE FROM rp_schedules WHERE ?1 = ?1 AND ?2 = ?2",
        "DELETE FROM rp_retries WHERE ?1 = ?1 AND ?2 = ?2",
        "DELETE FROM rp_dead WHERE ?1 = ?1 AND ?2 = ?2",
        NULL};
    for (int i = 0; !rc && setup[i]; i++) {
        rp_db_stmt_t *st = rp_db_prepare(db, setup[i], err);
        if (!st) {
            rc = err ? err->code : RP_EIO;
            break;
        }
        rp_db_bind_int(st, 1, r->start_seq);
        rp_db_bind_int(st, 2, r->end_seq);
        int src = rp_db_step(st);
        if (src != RP_DB_DONE)
            rc = rp_db_error(db, src, "cannot prepare the copy", err);
        rp_db_finalize(st);
    }
    if (!rc)
        rc = rp_store_reset_ids(s, err);
    if (!rc) {
        r->first_at = one_int(db, "SELECT coalesce(min(at), 0) FROM rp_replay_feed WHERE ?1 = ?1",
                              0, err, &rc);
        r->last_at = one_int(db, "SELECT coalesce(max(at), 0) FROM rp_replay_feed WHERE ?1 = ?1", 0,
                             err, &rc);
        if (!r->first_at)
            r->first_at = one_int(db, "SELECT coalesce(max(at), 1) FROM rp_events WHERE ?1 = ?1", 0,
                                  err, &rc);
    }
    rp_store_close(s);
    return rc;
}

/* ---- the engine on the copy ----------------------------------------------------------------- */

/* A line of the trace prelude. A handler's line ends "ENTITY ID" as the copy numbers the
 * record: said as the report names it (the recorded id, or new#N). */
static void trace_said(replay_t *r, const char *line)
{
    const char *sp = strrchr(line, ' ');
    char *end = NULL;
    long long id = sp ? strtoll(sp + 1, &end, 10) : 0;
    const char *ent = NULL;
    if (!strncmp(line, "handler ", 8) && id > 0 && end && !*end) {
        for (ent = sp; ent > line && ent[-1] != ' '; ent--)
            ;
    }
    if (!ent || ent == line || ent >= sp) {
        rp__replay_trace(r, "  %s", line);
        return;
    }
    char entity[128], told[48];
    snprintf(entity, sizeof entity, "%.*s", (int)(sp - ent), ent);
    rp__replay_id_text(r, entity, id, told, sizeof told);
    rp__replay_trace(r, "  %.*s%s", (int)(sp + 1 - line), line, told);
}

/* Lines of the engine: dropped, except in a trace, where warnings and errors are shown. */
static void replay_log(void *ud, const char *level, const char *component, const char *msg)
{
    replay_t *r = ud;
    if (!strcmp(msg, "") || !r->o->trace)
        return;
    const char *mark = "replay.trace: ";
    if (!strncmp(msg, mark, strlen(mark))) {
        trace_said(r, msg + strlen(mark));
        return;
    }
    if (!strcmp(level, "warn") || !strcmp(level, "error")) {
        /* The copy's sequence numbers mean nothing to the reader: say the recorded event's. */
        const char *at = strstr(msg, "seq=");
        char *end = NULL;
        long long seq = at ? strtoll(at + 4, &end, 10) : 0;
        if (seq > 0 && end != at + 4) {
            char told[80];
            rp__replay_seq_text(r, seq, told, sizeof told);
            rp__replay_trace(r, "  %s %s: %.*sevent=%s%s", level, component, (int)(at - msg),
                             msg, told, end);
        } else {
            rp__replay_trace(r, "  %s %s: %s", level, component, msg);
        }
    }
}

/* Wraps the rule-making calls so that each hook, handler and job call says itself. */
static const char trace_prelude[] =
    "local say = crm.log.info\n"
    "local function show(v) local ok, s = pcall(crm.json.encode, v)\n"
    "  return ok and s or tostring(v) end\n"
    "local on, before, job = crm.on, crm.before, crm.job\n"
    "crm.on = function(p, fn, ...)\n"
    "  return on(p, function(ev, ...)\n"
    "    say('replay.trace: handler ' .. p .. ' <- ' .. tostring(ev.type) .. ' ' ..\n"
    "        tostring(ev.entity) .. ' ' .. tostring(ev.id))\n"
    "    return fn(ev, ...) end, ...) end\n"
    "crm.before = function(t, fn, ...)\n"
    "  return before(t, function(rec, old, info, ...)\n"
    "    say('replay.trace: hook ' .. t .. ' ' .. show(rec))\n"
    "    return fn(rec, old, info, ...) end, ...) end\n"
    "crm.job = function(n, fn, ...)\n"
    "  return job(n, function(p, j, ...)\n"
    "    say('replay.trace: job ' .. n .. ' ' .. show(p))\n"
    "    return fn(p, j, ...) end, ...) end\n";

static int load_plugins(replay_t *r, rp_engine_t *en, rp_error_t *err)
{
    const char *dirs[RP_ENGINE_MAX_DIRS + 1];
    int n = 0;
    if (r->o->builtin_plugins && rp_setting_bool(en->s, "plugins.builtin", true))
        dirs[n++] = r->o->builtin_plugins;
    for (int i = 0; r->o->plugin_dirs && r->o->plugin_dirs[i] && n < RP_ENGINE_MAX_DIRS; i++)
        dirs[n++] = r->o->plugin_dirs[i];
    dirs[n] = NULL;
    rp_plugins_opts_t po = {.dirs = dirs, .skip_broken = true, .log = replay_log, .log_ud = r};
    int rc = rp_plugins_load(en->s, en->e, &po, &en->pl, err);
    if (rc)
        return rc;
    /* The plugins' handlers and jobs do not run: what they did is in the recorded history, and
     * their jobs reach the outside (mail, SMS). Their before-hooks stay, as part of each write. */
    json_t *desc = rp_plugins_describe(en->pl);
    size_t i;
    json_t *p;
    json_array_foreach(desc, i, p) {
        char owner[160];
        snprintf(owner, sizeof owner, "plugin:%s", json_string_value(json_object_get(p, "name")));
        rp_sched_unregister_owner(en->e, owner);
    }
    json_decref(desc);
    /* The copy's clock is the recorded one, in the past: its job ids start afresh. */
    return rp_db_exec(rp_store_db(en->s), "DELETE FROM rp_jobs; DELETE FROM rp_schedules;"
                      " DELETE FROM rp_job_ids", err);
}

static int load_script(replay_t *r, rp_engine_t *en, rp_error_t *err)
{
    rp_store_t *s = en->s;
    const char *base = strrchr(r->o->script, '/');
    rp_lua_opts_t lo = {
        .sandbox = true,
        .name = base ? base + 1 : r->o->script,
        .ext = rp_plugins_lua(en->pl),
        .max_instructions = rp_setting_int(s, "lua.max_instructions", 0, replay_log, r),
        .max_wall_ms = rp_setting_int(s, "lua.max_wall_ms", 0, replay_log, r),
        .max_memory = (size_t)rp_setting_int(s, "lua.max_memory_mb", 0, replay_log, r) << 20,
        .max_cpu_ms = rp_setting_int(s, "lua.max_cpu_ms", 0, replay_log, r)};
    if (!(r->l = rp_lua_new(s, en->e, &lo, err)))
        return err ? err->code : RP_EIO;
    int rc = 0;
    if (r->o->trace && (rc = rp_lua_eval(r->l, trace_prelude, "replay.trace", NULL, err)))
        return rc;
    /* math.random as the same numbers every run: a second replay gives the same report. */
    if ((rc = rp_lua_eval(r->l, "math.randomseed(0x7265706c6179)", "replay.seed", NULL, err)))
        return rc;
    r->s = s;
    r->mark = rp_events_last_seq(s); /* what loading the script writes is the script's */
    if ((rc = rp_lua_run_file(r->l, r->o->script, 0, NULL, NULL, err)))
        return rc;
    /* Handlers see the window's events only, whatever checkpoint a live handler of the same
     * name had; the temporary tables note every job scheduled and which event caused it. */
    return rp_db_exec(rp_store_db(s),
                      "UPDATE rp_subscribers SET checkpoint ="
                      " (SELECT coalesce(max(seq), 0) FROM rp_events);"
                      "CREATE TEMP TABLE replay_cur(seq INTEGER);"
                      "INSERT INTO replay_cur VALUES(0);"
                      "CREATE TEMP TABLE replay_jobs(id INTEGER, name TEXT, key TEXT,"
                      " payload TEXT, due_at INTEGER, cause INTEGER, created_by TEXT);"
                      "CREATE TEMP TRIGGER replay_jobs_in AFTER INSERT ON main.rp_jobs BEGIN"
                      " INSERT INTO replay_jobs SELECT new.id, new.name, new.key, new.payload,"
                      " new.due_at, seq, new.created_by FROM replay_cur; END;",
                      err);
}

/* The store's time: the scheduler's, but a recorded write applied again is at its own time. */
static int64_t replay_clock(void *ud)
{
    replay_t *r = ud;
    return r->pin_at ? r->pin_at : rp_sched_now(r->e);
}

static int open_engine(replay_t *r, rp_error_t *err)
{
    rp_engine_t *en = calloc(1, sizeof *en);
    if (!en)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory opening the copy");
    r->en = en;
    int64_t start = r->o->from_ms && r->o->from_ms < r->first_at ? r->o->from_ms : r->first_at;
    en->o = (rp_engine_opts_t){
        .db = r->path, .virtual_clock = true, .start_ms = start, .offline = true,
        .log = replay_log, .log_ud = r};
    rp_store_opts_t so = {.must_exist = true};
    int rc = rp_store_open(r->path, &so, &en->s, err);
    if (rc)
        return rc;
    /* Before the plugins load: nothing a replay does may reach a server (the report is of what
     * would have been sent; a poll would mark live mail seen, a send would send it). */
    rp_store_set_offline(en->s, true);
    /* The same "random" numbers every run: event uids and jitter stay out of the report's
     * bytes, and a second replay gives the same one. */
    rp_store_seed(en->s, 0x7265706c6179ULL);
    if ((rc = rp_db_scratch(rp_store_db(en->s), err)))
        return rc;
    rp_sched_opts_t sched = {.virtual_clock = true,
                             .start_ms = start,
                             .log = replay_log,
                             .log_ud = r,
                             .retry = {.max_attempts = 1}};
    if (!(en->e = rp_sched_new(en->s, &sched)))
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory making the scheduler");
    r->e = en->e;
    rp_store_set_clock(en->s, replay_clock, r);
    if ((rc = load_plugins(r, en, err)))
        return rc;
    r->s = en->s;
    r->e = en->e;
    rc = load_script(r, en, err);
    return rc ? rc : rp__replay_bounds_init(r, err);
}

static void close_engine(replay_t *r)
{
    rp_lua_free(r->l);
    r->l = NULL;
    rp_engine_close(r->en);
    r->en = NULL;
}

/* ---- the run ----------------------------------------------------------------------------------
 */

static int set_cause(replay_t *r, int64_t seq, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s), "UPDATE replay_cur SET seq = ?1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, seq);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE)
        return rp_db_error(rp_store_db(r->s), src, "cannot note the cause", err);
    return rp__replay_events_reset(r, err);
}

/* Lets the virtual clock run to @p at, running the jobs that fall due on the way. */
static int clock_to(replay_t *r, int64_t at, rp_error_t *err)
{
    int64_t now = rp_sched_now(r->e);
    if (at <= now)
        return 0;
    int rc = rp__replay_events_reset(r, err);
    if (!rc)
        rc = rp__replay_jobs_err(r, rp_sched_advance(r->e, at - now, err), err);
    if (!rc)
        rc = rp__replay_events_err(r, true, err);
    return rc ? rc : rp__replay_collect(r, 0, true, err);
}

static int feed_one(replay_t *r, json_t *ev, rp_error_t *err)
{
    const char *entity = json_string_value(json_object_get(ev, "entity"));
    if (r->o->entity && strcmp(r->o->entity, entity) != 0) {
        r->skipped++;
        return 0;
    }
    int rc = clock_to(r, json_integer_value(json_object_get(ev, "at")), err);
    if (!rc)
        rc = set_cause(r, json_integer_value(json_object_get(ev, "seq")), err);
    if (rc)
        return rc;
    rc = rp__replay_apply(r, ev, err);
    return rc > 0 ? 0 : rc;
}

static int run_feed(replay_t *r, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(r->s);
    int64_t after = 0;
    int rc = 0;
    for (;;) {
        /* A page at a time: a window of a million events is never held in memory. */
        rp_db_stmt_t *st = rp_db_stmt(db,
                                      "SELECT seq, type, entity, record_id, actor, origin,"
                                      " at, changes FROM rp_replay_feed WHERE seq > ?1"
                                      " ORDER BY seq LIMIT 256",
                                      err);
        if (!st)
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, after);
        json_t *page = json_array();
        int src;
        while ((src = rp_db_step(st)) == RP_DB_ROW)
            json_array_append_new(
                page,
                json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:I,s:s}", "seq",
                          (json_int_t)rp_db_col_int(st, 0), "type", rp_db_col_text(st, 1), "entity",
                          rp_db_col_text(st, 2), "record_id", (json_int_t)rp_db_col_int(st, 3),
                          "actor", rp_db_col_text(st, 4), "origin", rp_db_col_text(st, 5), "at",
                          (json_int_t)rp_db_col_int(st, 6), "changes", rp_db_col_text(st, 7)));
        rp_db_reset(st);
        if (src != RP_DB_DONE)
            rc = rp_db_error(db, src, "cannot read the events to replay", err);
        size_t i, n = json_array_size(page);
        json_t *ev;
        json_array_foreach(page, i, ev) {
            if (rc)
                break;
            after = json_integer_value(json_object_get(ev, "seq"));
            rc = feed_one(r, ev, err);
        }
        json_decref(page);
        if (rc || n == 0)
            return rc;
    }
}

/* A script is a readable regular file the parser takes in one call: a folder would run as an
 * empty script and a device (/dev/zero) would be read until memory runs out. */
static int script_ok(const char *path, rp_error_t *err)
{
    struct stat st;
    if (access(path, R_OK) != 0 || stat(path, &st) != 0)
        return rp_error_field(err, "script",
                              rp_error_set(err, RP_ENOTFOUND, 0, "%s: cannot read the script: %s",
                                           path, strerror(errno)));
    if (!S_ISREG(st.st_mode))
        return rp_error_field(err, "script",
                              rp_error_set(err, RP_EINVAL, 0,
                                           "%s: not a script file (a folder, a device or a "
                                           "pipe): replay runs a regular .lua file",
                                           path));
    if (st.st_size > RP_LUA_MAX_CHUNK)
        return rp_error_field(err, "script",
                              rp_error_set(err, RP_EINVAL, RP_C_CAP,
                                           "%s: %lld bytes; a script is at most %d bytes", path,
                                           (long long)st.st_size, RP_LUA_MAX_CHUNK));
    return 0;
}

int rp_replay_run(const rp_replay_opts_t *o, json_t **report, rp_error_t *err)
{
    *report = NULL;
    if (!o || !o->db || !o->script)
        return rp_error_set(err, RP_EINVAL, 0, "replay needs a database and a script");
    int rc = script_ok(o->script, err);
    if (rc)
        return rc;
    replay_t r = {.o = o};
    rc = rp__replay_init(&r, err);
    rp_log_set_sink(replay_log, &r);
    if (!rc)
        rc = prepare_copy(&r, err);
    if (!rc)
        rc = open_engine(&r, err);
    if (!rc)
        rc = rp__replay_collect(&r, 0, false, err); /* what loading the script did */
    if (!rc)
        rc = run_feed(&r, err);
    if (!rc && (o->to_ms || r.last_at))
        rc = clock_to(&r, o->to_ms ? o->to_ms : r.last_at, err);
    if (!rc)
        rc = rp__replay_finish(&r, err);
    close_engine(&r);
    rp_log_set_sink(NULL, NULL);
    remove_dir(&r);
    if (!rc)
        *report = json_incref(r.report);
    rp__replay_free(&r);
    return rc;
}
