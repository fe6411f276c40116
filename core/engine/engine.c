/*
 * engine.c — the engine object: opens the store, the scheduler on its clock, the plugins and
 * the scripts in one order, and closes them in the other.
 */
#include <stdlib.h>
#include <string.h>

#include "rapport/engine.h"
#include "rapport/events.h"
#include "rapport/settings.h"

#include "private.h"

/* The limits of sandboxed scripts, from the settings lua.max_instructions, lua.max_wall_ms,
 * lua.max_memory_mb and lua.max_cpu_ms; unset ones keep the built-in defaults. */
static rp_lua_opts_t script_limits(rp_engine_t *en)
{
    rp_store_t *s = en->s;
    rp_log_fn log = en->o.log;
    void *ud = en->o.log_ud;
    int64_t ins = rp_setting_int(s, "lua.max_instructions", 0, log, ud);
    int64_t wall = rp_setting_int(s, "lua.max_wall_ms", 0, log, ud);
    int64_t mem = rp_setting_int(s, "lua.max_memory_mb", 0, log, ud);
    int64_t cpu = rp_setting_int(s, "lua.max_cpu_ms", 0, log, ud);
    return (rp_lua_opts_t){.max_instructions = ins, .max_wall_ms = wall,
                           .max_memory = (size_t)mem << 20, .max_cpu_ms = cpu,
                           .coverage = en->o.coverage};
}

static int open_store(rp_engine_t *en, rp_error_t *err)
{
    rp_store_opts_t so = {.sync_full = en->o.sync_full, .must_exist = !en->o.create};
    int rc = rp_store_open(en->o.db, &so, &en->s, err);
    if (rc)
        return rc;
    /* A dry run's writes are rolled back: an outside effect of its scripts could not be. */
    rp_store_set_offline(en->s, en->o.offline || en->o.dry_run);
    /* Everything after this point writes inside the transaction; rp_store_close() rolls it
     * back, last, after the parts that might write while they close. */
    if (en->o.dry_run) {
        if ((rc = rp_store_begin(en->s, err)))
            return rc;
        en->dry_since = rp_events_last_seq(en->s);
    }
    /* User names have no ':', so "contact:42" can only be a record. */
    if (en->o.user && strchr(en->o.user, ':'))
        rc = rp_access_of_subject(en->s, en->o.user, en->o.role ? en->o.role : "portal",
                                  &en->access, err);
    else if (en->o.user)
        rc = rp_access_of_user(en->s, en->o.user, &en->access, err);
    if (rc)
        return rp_error_field(err, "user", rc);
    return 0;
}

/* The built-in folder unless the setting plugins.builtin says no (the bare core, with only the
 * entities one defines), then the other folders. */
static int load_plugins(rp_engine_t *en, rp_error_t *err)
{
    const char *dirs[RP_ENGINE_MAX_DIRS + 1];
    int n = 0;
    if (en->o.builtin_plugins && rp_setting_bool(en->s, "plugins.builtin", true))
        dirs[n++] = en->o.builtin_plugins;
    for (int i = 0; en->o.plugin_dirs && en->o.plugin_dirs[i] && n < RP_ENGINE_MAX_DIRS; i++)
        dirs[n++] = en->o.plugin_dirs[i];
    dirs[n] = NULL;
    rp_plugins_opts_t po = {.dirs = dirs, .files = en->o.plugin_files, .skip_broken = en->o.skip_broken, .log = en->o.log,
                            .log_ud = en->o.log_ud};
    int rc = rp_plugins_load(en->s, en->e, &po, &en->pl, err);
    return rc ? rp_error_field(err, "plugins", rc) : 0;
}

/* The given script folders, then those the plugins ship. */
static int load_scripts(rp_engine_t *en, rp_error_t *err)
{
    const char *dirs[2 * RP_ENGINE_MAX_DIRS + 1];
    int n = 0;
    for (int i = 0; en->o.script_dirs && en->o.script_dirs[i] && n < RP_ENGINE_MAX_DIRS; i++)
        dirs[n++] = en->o.script_dirs[i];
    const char *const *pd = rp_plugins_script_dirs(en->pl);
    for (int i = 0; pd && pd[i] && n < 2 * RP_ENGINE_MAX_DIRS; i++)
        dirs[n++] = pd[i];
    dirs[n] = NULL;
    en->sc = rp_scripts_load(en->s, en->e, dirs, &en->limits, en->o.log, en->o.log_ud);
    if (!en->sc)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory loading the scripts");
    /* A script that does not load means business rules that would not run: refuse, as for a
     * broken plugin (the log names the file and line), unless told to go on. */
    int broken = rp_scripts_broken(en->sc);
    if (broken && !en->o.skip_broken && !en->o.broken_scripts_ok)
        return rp_error_field(err, "scripts",
                              rp_error_set(err, RP_EINVAL, RP_C_SCRIPT,
                                           "%d script(s) failed to load (the log names them)",
                                           broken));
    return 0;
}

static int open_parts(rp_engine_t *en, rp_error_t *err)
{
    int rc = open_store(en, err);
    if (rc || en->o.bare)
        return rc;
    rp_sched_opts_t so = {.virtual_clock = en->o.virtual_clock, .start_ms = en->o.start_ms,
                          .log = en->o.log, .log_ud = en->o.log_ud};
    if (!(en->e = rp_sched_new(en->s, &so)))
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory making the scheduler");
    if ((rc = load_plugins(en, err)))
        return rc;
    en->limits = script_limits(en);
    en->limits.ext = rp_plugins_lua(en->pl);
    return load_scripts(en, err);
}

int rp_engine_open(const rp_engine_opts_t *o, rp_engine_t **out, rp_error_t *err)
{
    *out = NULL;
    if (!o || !o->db || !*o->db)
        return rp_error_field(err, "db", rp_error_set(err, RP_EINVAL, RP_C_OPEN,
                                                      "the engine needs a database path"));
    rp_engine_t *en = calloc(1, sizeof *en);
    if (!en)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory opening the engine");
    en->o = *o;
    int rc = open_parts(en, err);
    if (rc) {
        rp_engine_close(en);
        return rc;
    }
    *out = en;
    return 0;
}

void rp_engine_close(rp_engine_t *en)
{
    if (!en)
        return;
    rp_scripts_free(en->sc);
    rp_plugins_unload(en->pl);
    rp_sched_free(en->e);
    rp_access_free(en->access);
    rp_store_close(en->s);
    free(en);
}

rp_store_t *rp_engine_store(const rp_engine_t *en)
{
    return en->s;
}

rp_sched_t *rp_engine_sched(const rp_engine_t *en)
{
    return en->e;
}

rp_plugins_t *rp_engine_plugins(const rp_engine_t *en)
{
    return en->pl;
}

rp_scripts_t *rp_engine_scripts(const rp_engine_t *en)
{
    return en->sc;
}

int64_t rp_engine_dry_since(const rp_engine_t *en)
{
    return en->dry_since;
}

rp_access_t *rp_engine_access(const rp_engine_t *en)
{
    return en->access;
}

rp_lua_opts_t rp_engine_lua_opts(const rp_engine_t *en)
{
    return en->limits;
}
