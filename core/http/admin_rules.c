/*
 * admin_rules.c — the rules in the engine room: the plugins and scripts the server runs (the
 * broken ones with why), a reload of the edited scripts, and a run of the scripts' tests.
 *
 * The tests run as `rapport test` does, in a child process (this very binary) over the script
 * folders the server loads: each test on its own in-memory database and virtual clock, so
 * nothing touches the served database, and the loop is never held — the answer comes when the
 * child ends, or when it is stopped after TESTS_MAX_MS. One run at a time (409 meanwhile).
 * Scripts are also reloaded by themselves within a second of an edit (the engine's interval);
 * the button only makes it now.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <uv.h>

#include "http_internal.h"

#define TESTS_MAX_MS 60000       /* a test run stopped after this long */
#define TESTS_OUT_MAX (256u << 10) /* bytes of its output kept */
#define TESTS_DIRS_MAX 16

typedef struct run {
    rp_http_t *h;
    h2o_req_t *req;        /* NULL once the client left */
    struct run **guard;    /* in req's pool */
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    int open;              /* handles not yet closed */
    bool exited, timed_out;
    int64_t status;
    char *text;
    size_t len;
} run_t;

static run_t *running;     /* the one run under way, or NULL */

static void guard_dispose(void *p)
{
    run_t **g = p;
    if (*g)
        (*g)->req = NULL;
}

static int engine_missing(call_t *c)
{
    return rp__http_problem(c, 503, "this server was started without an engine to describe",
                            NULL);
}

int rp__http_admin_engine(call_t *c, bool reload)
{
    if (!c->h->engine)
        return engine_missing(c);
    json_t *d = c->h->engine(c->h->engine_ud, reload);
    if (!d)
        return rp__http_problem(c, 503, "out of memory", NULL);
    return rp__http_send_json(c, 200, d);
}

/* Sends the run's answer once the child and every handle are done. */
static void finish(run_t *r)
{
    if (--r->open > 0)
        return;
    if (r->req) {
        *r->guard = NULL;
        call_t c = {.h = r->h, .req = r->req};
        /* "N passed, M failed" is rapport test's last line. */
        long passed = -1, failed = -1;
        const char *sum = r->text ? strstr(r->text, " passed, ") : NULL;
        while (sum && sum > r->text && sum[-1] >= '0' && sum[-1] <= '9')
            sum--;
        if (sum)
            sscanf(sum, "%ld passed, %ld failed", &passed, &failed);
        json_t *ans = json_pack("{s:b,s:I,s:s,s:b}", "ok", r->status == 0 && !r->timed_out,
                                "exit", (json_int_t)r->status, "output",
                                r->text ? r->text : "", "timed_out", r->timed_out);
        if (ans && passed >= 0) {
            json_object_set_new(ans, "passed", json_integer(passed));
            json_object_set_new(ans, "failed", json_integer(failed));
        }
        if (!ans || !json_is_string(json_object_get(ans, "output"))) {
            json_decref(ans);
            rp__http_problem(&c, 500, "the tests' output could not be answered", NULL);
        } else
            rp__http_send_json(&c, 200, ans);
    }
    free(r->text);
    if (running == r)
        running = NULL;
    free(r);
}

static void on_closed(uv_handle_t *h)
{
    finish(h->data);
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    (void)h;
    static char chunk[8192];
    (void)want;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    run_t *r = s->data;
    if (n < 0) {
        uv_read_stop(s);
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (n == 0 || r->len + (size_t)n > TESTS_OUT_MAX)
        return; /* beyond the cap: the rest is dropped, the summary line is lost */
    char *t = realloc(r->text, r->len + (size_t)n + 1);
    if (!t)
        return;
    memcpy(t + r->len, buf->base, (size_t)n);
    r->text = t;
    r->len += (size_t)n;
    r->text[r->len] = '\0';
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    run_t *r = p->data;
    r->exited = true;
    r->status = sig ? 128 + sig : status;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)p, on_closed);
}

static void on_timeout(uv_timer_t *t)
{
    run_t *r = t->data;
    r->timed_out = true;
    if (!r->exited)
        uv_process_kill(&r->proc, SIGKILL);
}

/* POST admin/scripts/test: runs the tests of the folders the server loads scripts from. */
int rp__http_admin_tests(call_t *c)
{
    rp_http_t *h = c->h;
    if (!h->engine)
        return engine_missing(c);
    if (running)
        return rp__http_problem(c, 409, "the tests are running already; wait for their answer",
                                NULL);
    if (!h->loop)
        return rp__http_problem(c, 503, "the server is not running", NULL);
    json_t *d = h->engine(h->engine_ud, false);
    json_t *dirs = json_object_get(d, "script_dirs");
    char *argv[2 + 3 * TESTS_DIRS_MAX + 1]; /* self, --scripts pairs, test, the folders */
    int argc = 0;
    char self[4096];
    size_t sl = sizeof self - 1;
    if (uv_exepath(self, &sl) != 0) {
        json_decref(d);
        return rp__http_problem(c, 503, "cannot tell where this program is", NULL);
    }
    argv[argc++] = self;
    /* The folders the server was given (after the default one, which the child finds as the
     * server did) are given to the child too, so its tests see the rules the server runs; the
     * plugins' folders it loads itself. The tests are those of every folder. */
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(d, "given_dirs"), i, v) {
        if (i >= TESTS_DIRS_MAX)
            break;
        if (i > 0 && json_is_string(v)) {
            argv[argc++] = "--scripts";
            argv[argc++] = (char *)json_string_value(v);
        }
    }
    argv[argc++] = "test";
    json_array_foreach(dirs, i, v) {
        if (i < TESTS_DIRS_MAX && json_is_string(v))
            argv[argc++] = (char *)json_string_value(v);
    }
    argv[argc] = NULL;
    run_t *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(d);
        return rp__http_problem(c, 503, "out of memory", NULL);
    }
    r->h = h;
    r->req = c->req;
    uv_pipe_init(h->loop, &r->out, 0);
    r->out.data = r;
    /* What rapport test prints (a line per failure, the summary) comes on stdout; its log
     * lines are not the page's. */
    uv_stdio_container_t io[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out},
        {.flags = UV_IGNORE}};
    uv_process_options_t po = {.file = self, .args = argv, .exit_cb = on_exit_cb,
                               .stdio_count = 3, .stdio = io};
    r->proc.data = r;
    int rc = uv_spawn(h->loop, &r->proc, &po);
    json_decref(d);
    if (rc) {
        r->req = NULL;
        r->open = 2; /* the pipe, and the process handle uv_spawn leaves to close */
        uv_close((uv_handle_t *)&r->proc, on_closed);
        uv_close((uv_handle_t *)&r->out, on_closed);
        return rp__http_problemf(c, 503, NULL, "cannot run the tests: %s", uv_strerror(rc));
    }
    r->open = 3; /* the process, the pipe, the timer */
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timeout, TESTS_MAX_MS, 0);
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    r->guard = h2o_mem_alloc_shared(&c->req->pool, sizeof *r->guard, guard_dispose);
    *r->guard = r;
    running = r;
    return 0;
}

void rp__http_admin_tests_stop(rp_http_t *h)
{
    run_t *r = running;
    if (!r || r->h != h)
        return;
    if (r->req) {
        *r->guard = NULL;
        r->req = NULL;
    }
    if (!r->exited)
        uv_process_kill(&r->proc, SIGKILL);
}
