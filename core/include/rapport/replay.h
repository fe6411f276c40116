/*
 * replay.h — "what would this rule have done?": one script run over the recorded history of a
 * database, on a private copy brought back to the window's start, with the virtual clock set to
 * each event's time. The live database is only read.
 */
#ifndef RAPPORT_REPLAY_H
#define RAPPORT_REPLAY_H

#include <stdint.h>

#include <jansson.h>

#include "rapport/error.h"
#include "rapport/log.h"

/** What to replay. Every pointer is borrowed for the call. */
typedef struct rp_replay_opts {
    const char *db;                 /**< The live database (only read); required. */
    const char *script;             /**< The script file to run; required. */
    const char *builtin_plugins;    /**< As rp_engine_opts_t (may be NULL). */
    const char *const *plugin_dirs; /**< As rp_engine_opts_t (may be NULL). */
    int64_t from_ms;                /**< The window starts at this time (0: the beginning). */
    int64_t to_ms;                  /**< The window ends before this time (0: now). */
    const char *entity;             /**< Feed only the events of this entity (NULL: all). */
    int64_t event_seq;              /**< Replay only this event (0: the window). */
    /** Called with one line for each hook or handler call, write and error as it happens
     *  (NULL: no trace). */
    void (*trace)(void *ud, const char *line);
    void *trace_ud;
    rp_log_fn log; /**< Where the engine's notable things go (may be NULL). */
    void *log_ud;
} rp_replay_opts_t;

/**
 * Copies @p o->db into a private temporary folder, undoes there every record event after the
 * window's start (newest first, from the old values the events kept), loads the plugins and
 * @p o->script alone, then re-applies each recorded event of the window as the write it was
 * (its actor and origin, at its time on the virtual clock) and runs the script's handlers and
 * the jobs that fall due. Plugins' jobs are not run; nothing is sent. The copy is removed.
 *
 * *report (owned) is {"script", "window": {"from","to","events","skipped"}, "created",
 * "changed", "deleted", "restored", "emitted", "hooks", "jobs", "messages", "errors", "notes"}:
 * only what the script caused, each item naming the recorded event it came from ("by":
 * {seq, type, entity, id}). Its bytes depend only on the history and the script.
 * RP_EINVAL with "file:line: message" when the script does not load; RP_ENOTFOUND for an
 * unknown event or a database that is not there.
 */
int rp_replay_run(const rp_replay_opts_t *o, json_t **report, rp_error_t *err);

#endif
