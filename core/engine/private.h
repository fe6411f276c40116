/*
 * private.h — what the files of core/engine share: the engine object's insides. Only
 * core/engine includes it.
 */
#ifndef RAPPORT_ENGINE_PRIVATE_H
#define RAPPORT_ENGINE_PRIVATE_H

#include "rapport/engine.h"

/** Plugin or script folders an engine takes from its options. */
#define RP_ENGINE_MAX_DIRS 48

struct rp_engine {
    rp_engine_opts_t o;   /* copied; the strings it points at are the caller's */
    rp_store_t *s;
    rp_sched_t *e;        /* NULL for a bare engine */
    rp_plugins_t *pl;
    rp_scripts_t *sc;
    rp_access_t *access;  /* the user's, or NULL */
    rp_lua_opts_t limits; /* the scripts' limits and the plugins' Lua functions */
    int64_t dry_since;    /* dry_run: the last event's seq when its transaction began */
};

#endif
