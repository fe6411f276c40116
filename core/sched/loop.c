/*
 * loop.c — the engine's serve loop on libuv: a pass of due work at the next due time (or at a
 * kick, or the poll), signals, the interval and pass callbacks, another part attached to the
 * loop (the HTTP server), and WAL checkpoints on a worker thread. sched.c holds what a pass does.
 */
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rapport/db.h"
#include "rapport/sched.h"
#include "rapport/store.h"
#include "private.h"

/* Under load a pass waits this long for more jobs to fall due (see on_tick). */
#define RP__PASS_SLACK_MS 2

static void on_tick(uv_timer_t *t)
{
    rp_sched_t *e = t->data;
    rp_error_t err = {0};
    int did = 0;
    e->kicked = false;
    rp_store_refresh(e->s); /* entities another process defined meanwhile */
    bool failed = rp_sched_run_due(e, &did, &err) != 0;
    if (failed)
        rp__sched_say(e, "error", "pass failed error=%s", err.msg);
    if (e->pass_fn && !e->stopping)
        e->pass_fn(e->pass_ud);
    if (e->stopping) {
        uv_stop(e->loop);
        return;
    }
    int64_t wait = rp_sched_next_due(e) - rp_sched_now(e);
    if (wait > e->poll_ms || failed)
        wait = e->poll_ms; /* a failing pass is tried again at the poll, not in a tight loop */
    /* Under load (this pass did work), the next pass waits a little for more to fall due:
     * a pass costs two commits whatever it runs, so jobs due a millisecond apart share one
     * (at 10k jobs/s, 20 a pass instead of 1 or 2). Lateness grows by RP__PASS_SLACK_MS at most. */
    if (did > 0 && wait < RP__PASS_SLACK_MS)
        wait = RP__PASS_SLACK_MS;
    if (wait < 0)
        wait = 0;
    uv_timer_start(&e->timer, on_tick, (uint64_t)wait, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    rp_sched_t *e = h->data;
    if (signum == SIGHUP) {
        rp__sched_say(e, "info", "reload requested (SIGHUP)");
        if (e->on_hup)
            e->on_hup(e->hup_ud);
        return;
    }
    rp__sched_say(e, "info", "stopping on %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    rp_sched_stop(e);
}

void rp_sched_on_pass(rp_sched_t *e, void (*fn)(void *ud), void *ud)
{
    e->pass_fn = fn;
    e->pass_ud = ud;
}

void rp_sched_on_interval(rp_sched_t *e, void (*fn)(void *ud), void *ud, int every_ms)
{
    e->interval_fn = fn;
    e->interval_ud = ud;
    e->interval_ms = every_ms > 0 ? every_ms : 1000;
}

static void on_interval(uv_timer_t *t)
{
    rp_sched_t *e = t->data;
    if (e->interval_fn && !e->stopping)
        e->interval_fn(e->interval_ud);
}

struct uv_loop_s *rp_sched_loop(const rp_sched_t *e)
{
    return e && !e->stopping ? e->loop : NULL;
}

void rp_sched_attach(rp_sched_t *e, int (*start)(void *ud, uv_loop_t *loop, rp_error_t *err),
                     void (*stop)(void *ud, uv_loop_t *loop), void *ud)
{
    e->att_start = start;
    e->att_stop = stop;
    e->att_ud = ud;
}

void rp_sched_kick(rp_sched_t *e)
{
    /* One restart per loop turn however many writes asked: a timer of 0 runs on the next. */
    if (!e->loop || e->stopping || e->kicked)
        return;
    e->kicked = true;
    uv_timer_start(&e->timer, on_tick, 0, 0);
}

void rp_sched_stop(rp_sched_t *e)
{
    e->stopping = true;
    if (e->loop)
        uv_stop(e->loop);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void ckpt_done(uv_work_t *w, int status);

static void ckpt_run(uv_work_t *w)
{
    rp_sched_t *e = w->data;
    e->ckpt_took_us = 0;
    if (!e->ckpt_db) {
        /* Its own connection, on this worker thread only. Opening reads the file, which a
         * connection must have done before it knows the file is in WAL mode (a checkpoint
         * through it did nothing before that read, and the WAL of a busy serve grew). */
        rp_db_opts_t o = {.no_migrate = true, .busy_timeout_ms = 100};
        if (rp_db_open(e->db_path, &o, &e->ckpt_db, NULL) != 0)
            return;
    }
    /* Passive: copies what it can without waiting for or blocking the writer. */
    int log = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rp_db_checkpoint(e->ckpt_db, false, &log);
    clock_gettime(CLOCK_MONOTONIC, &b);
    e->ckpt_log = log;
    e->ckpt_took_us = (int64_t)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
}

static void ckpt_queue(rp_sched_t *e)
{
    e->ckpt_busy = true;
    e->ckpt_work.data = e;
    if (uv_queue_work(e->loop, &e->ckpt_work, ckpt_run, ckpt_done) != 0)
        e->ckpt_busy = false;
}

static void ckpt_done(uv_work_t *w, int status)
{
    rp_sched_t *e = w->data;
    (void)status;
    e->ckpt_busy = false;
    /* Under a steady stream of writes a passive checkpoint never finds the WAL wholly copied
     * at the moment a write begins, so the WAL is never started over and grows without end
     * (measured: 1 GB after a minute of API creates, every read slower for it). Past
     * wal_restart_pages (64 MB), start it over here, on the loop, between two requests: the
     * passive pass just copied nearly all of it, so this copies the rest and waits only for
     * other processes' readers. "The rest" is what the loop wrote while the pass ran: after a
     * pass over 200 ms of writes the restart stalled the loop 10-17 ms, and at 16 MB it came
     * every 400 ms under 10k jobs/s: that was the timers' p99 lateness (32 ms, bench_sched).
     * So passes run back to back first, each shorter than the last (the worker copies far
     * faster than the loop writes), until one takes under 3 ms: then the restart has that
     * little left to copy. The restart comes at once when the log has grown to twice its limit
     * meanwhile (a worker short of CPU copies no faster than the loop writes: measured under
     * ASan with two CPU-bound processes beside, the file reached 36 MB for a 1 MB limit
     * without this), or after the eighth pass (where a sync alone takes longer than 3 ms). */
    if (e->ckpt_log > e->wal_restart_pages && !e->stopping) {
        if (e->ckpt_took_us > 3000 && e->ckpt_rounds < 8 &&
            e->ckpt_log < 2 * (int64_t)e->wal_restart_pages) {
            e->ckpt_rounds++;
            ckpt_queue(e);
            return;
        }
        /* A reader that keeps an old snapshot (`rapport backup` holds one for the whole copy)
         * would make this wait out the store's busy timeout, 5 s of a stalled loop every 200 ms;
         * a short reader is done within 20 ms, a long one is waited for at the next turn. */
        int64_t was = rp_store_set_deadline(e->s, rp__sched_mono_ms() + 20);
        rp_db_checkpoint(rp_store_db(e->s), true, NULL);
        rp_store_set_deadline(e->s, was);
    }
    e->ckpt_rounds = 0;
}

static void on_ckpt_timer(uv_timer_t *t)
{
    rp_sched_t *e = t->data;
    if (e->ckpt_busy || e->stopping || !e->db_path)
        return;
    ckpt_queue(e);
}

int rp_sched_serve(rp_sched_t *e, int poll_ms, void (*on_hup)(void *ud), void *hup_ud,
                   rp_error_t *err)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return rp_error_set(err, RP_EIO, 0, "cannot start the event loop");
    /* A serving engine keeps what it frees for its next pass: glibc would otherwise give the
     * top of the heap back on a free and take it again on the next malloc, a brk and a page
     * fault per page every pass (a third of a timer pass's CPU at 10k jobs/s). */
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
    e->loop = &loop;
    e->poll_ms = poll_ms > 0 ? poll_ms : 100;
    e->on_hup = on_hup;
    e->hup_ud = hup_ud;
    e->stopping = false;
    e->ckpt_rounds = 0;
    uv_timer_init(&loop, &e->timer);
    e->timer.data = e;
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, &e->sig[i]);
        e->sig[i].data = e;
        uv_signal_start(&e->sig[i], on_signal, sigs[i]);
    }
    uv_timer_init(&loop, &e->interval);
    e->interval.data = e;
    if (e->interval_fn)
        uv_timer_start(&e->interval, on_interval, (uint64_t)e->interval_ms,
                       (uint64_t)e->interval_ms);
    /* Checkpoint on a worker every 200 ms instead of inside a commit on the loop. */
    const char *file = rp_db_path(rp_store_db(e->s));
    e->db_path = file ? strdup(file) : NULL;
    uv_timer_init(&loop, &e->ckpt_timer);
    e->ckpt_timer.data = e;
    if (e->db_path) {
        rp_db_auto_checkpoint(rp_store_db(e->s), false);
        uv_timer_start(&e->ckpt_timer, on_ckpt_timer, 200, 200);
    }
    int rc = 0;
    if (e->att_start && (rc = e->att_start(e->att_ud, &loop, err)) != 0)
        e->stopping = true;
    else {
        rp__sched_say(e, "info", "started owner=%s handlers=%d subscribers=%d", e->owner, e->nhandlers,
            e->nsubs);
        uv_timer_start(&e->timer, on_tick, 0, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (e->att_stop)
            e->att_stop(e->att_ud, &loop);
    }
    uv_close((uv_handle_t *)&e->timer, close_cb);
    uv_close((uv_handle_t *)&e->interval, close_cb);
    uv_close((uv_handle_t *)&e->ckpt_timer, close_cb);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&e->sig[i], close_cb);
    uv_run(&loop, UV_RUN_DEFAULT); /* also waits for a checkpoint in flight */
    uv_loop_close(&loop);
    e->loop = NULL;
    if (e->ckpt_db) {
        rp_db_close(e->ckpt_db);
        e->ckpt_db = NULL;
    }
    if (e->db_path) {
        rp_db_auto_checkpoint(rp_store_db(e->s), true);
        free(e->db_path);
        e->db_path = NULL;
    }
    if (rc == 0)
        rp__sched_say(e, "info", "stopped");
    return rc;
}
