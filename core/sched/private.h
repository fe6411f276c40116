/*
 * private.h — what the scheduler's own files share: job-name rules, one statement step, and who
 * owns a claimed job. Not installed; nothing outside core/sched includes it.
 */
#ifndef RAPPORT_SCHED_PRIVATE_H
#define RAPPORT_SCHED_PRIVATE_H

#include <stdarg.h>

#include "rapport/db.h"

#include "rapport/sched.h"

#include <uv.h>

/* ---- the scheduler object (sched.c: what a pass does; loop.c: the serve loop) -------------- */

typedef struct {
    char *name, *owner;
    rp_job_fn fn;
    void *ud;
} handler_t;

typedef struct {
    char *name, *owner;
    rp_event_fn fn;
    void *ud;
    rp_sched_t *e;
} sub_t;

struct rp_sched {
    rp_store_t *s;
    bool virt;
    int64_t vnow;
    int64_t lease_ms;
    int wal_restart_pages; /* the log's size past which serve starts it over */
    rp_retry_t retry;
    rp_log_fn log;
    void *log_ud;
    char owner[160];
    int64_t reclaim_after; /* monotonic ms: when to look for stopped engines' jobs again */
    handler_t *handlers;
    int nhandlers;
    sub_t **subs;
    int nsubs;
    /* The subscribers were all found with nothing to do at file version quiet_version, and no
     * retry of theirs falls due before quiet_until: while both hold, a pass need not ask them
     * (rp_sched_next_due sets it; any commit, here or in another process, moves the version). */
    bool quiet;
    uint32_t quiet_version;
    int64_t quiet_until;
    /* The serve loop. */
    uv_loop_t *loop;
    /* Another part on the loop (rp_sched_attach). */
    int (*att_start)(void *ud, uv_loop_t *loop, rp_error_t *err);
    void (*att_stop)(void *ud, uv_loop_t *loop);
    void *att_ud;
    bool kicked;
    uv_timer_t timer;
    uv_signal_t sig[3];
    int poll_ms;
    bool stopping;
    void (*on_hup)(void *);
    void *hup_ud;
    uv_timer_t interval;
    void (*interval_fn)(void *);
    void *interval_ud;
    int interval_ms;
    void (*pass_fn)(void *); /* rp_sched_on_pass */
    void *pass_ud;
    /* WAL checkpoints run on a worker thread with a connection of their own, so the fsync they
     * need never stalls the loop (it showed as job lateness spikes). */
    uv_timer_t ckpt_timer;
    uv_work_t ckpt_work;
    bool ckpt_busy;
    rp_db_t *ckpt_db;   /* opened and used only on the worker thread */
    int ckpt_log;       /* frames in the WAL after the last passive checkpoint */
    int64_t ckpt_took_us; /* how long that checkpoint took on the worker */
    int ckpt_rounds;    /* passes run back to back before a restart */
    char *db_path;
};

/** Says one line of the engine's through its log, as component "sched". */
void rp__sched_say(rp_sched_t *e, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Monotonic milliseconds. */
int64_t rp__sched_mono_ms(void);

/** Whether @p n is a valid job or schedule name (lower-case letters, digits, _ . - :). */
bool rp__job_name_ok(const char *n);

/** Says one line through @p log (may be NULL) as component "sched", newlines flattened. */
void rp__sched_vsay(rp_log_fn log, void *ud, const char *level, const char *fmt, va_list ap);

/** Steps @p st once, resets it, and names @p what in @p err unless it finished (RP_DB_DONE). */
int rp__sched_step(rp_store_t *s, rp_db_stmt_t *st, const char *what, rp_error_t *err);

/* ---- owners (owner.c) ----------------------------------------------------------------------- */

/**
 * Writes this process's name in job claims into @p out (@p cap bytes, 160 is enough):
 * "<host>:<pid>:<start>:<boot>:<pidns>" — the host name, the process id, the process's start time
 * in clock ticks since boot (field 22 of /proc/<pid>/stat, so a recycled pid is not taken for the
 * old owner), the first 8 hex digits of the kernel's boot id, and the pid namespace's inode (so
 * two containers on one kernel never judge each other's pids). A part this machine cannot tell
 * is written "0", and an owner with such a part is judged by its lease only.
 */
void rp__owner_self(char *out, size_t cap);

/** What rp__owner_judge() can say of an owner. */
typedef enum {
    RP__OWNER_UNKNOWN, /**< Not judged here (another host, another boot or namespace, a name given
                            by the caller, the "pid:N" of older versions): its lease decides. */
    RP__OWNER_ALIVE,   /**< A process on this machine with that pid and that start time. */
    RP__OWNER_GONE,    /**< Of this machine, and no such process runs any more. */
} rp__owner_state_t;

/** Judges @p owner (a name made by rp__owner_self(), here or elsewhere) from this process. */
rp__owner_state_t rp__owner_judge(const char *owner);

/**
 * Puts back at once the running jobs of every owner other than @p self that is judged gone:
 * pending again, due when they were (so they run now, in due order), their attempt counted, or
 * dead when that attempt was the last of @p max_attempts (a job that kills its engine each
 * time). A job whose key was scheduled again meanwhile is dropped for the newer one. Says what
 * it did through @p log (may be NULL), one line per owner naming it and the jobs. Returns how
 * many jobs it put back or dead-lettered, or a negative RP_E* code.
 */
int rp__jobs_reclaim(rp_store_t *s, const char *self, int max_attempts, rp_log_fn log,
                     void *log_ud, rp_error_t *err);

#endif
