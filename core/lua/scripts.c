/*
 * scripts.c — script folders: every *.lua file in its own sandboxed state, loaded in name
 * order; a changed file is reloaded, and one that fails to load keeps its previous version.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_internal.h"

typedef struct script {
    char *path;
    struct timespec mtime;
    rp_lua_t *l;
    char *error;  /* why its file last failed to load (the previous version may run), or NULL */
} script_t;

struct rp_scripts {
    rp_store_t *s;
    rp_sched_t *e;
    rp_lua_opts_t opts;
    rp_log_fn log;
    void *log_ud;
    char **dirs;
    script_t *list;
    int n;
};

static void say(rp_scripts_t *sc, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(rp_scripts_t *sc, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp_log_vto(sc->log, sc->log_ud, level, "scripts", fmt, ap);
    va_end(ap);
}

static bool is_script(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".lua") == 0 &&
           !(n > 9 && strcmp(name + n - 9, "_test.lua") == 0) && name[0] != '.';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The script files of every folder, sorted within each folder. Owned array of owned paths. */
static char **list_files(rp_scripts_t *sc, int *count)
{
    char **out = NULL;
    int n = 0;
    for (int d = 0; sc->dirs[d]; d++) {
        DIR *dir = opendir(sc->dirs[d]);
        if (!dir) {
            say(sc, "warn", "cannot read script folder %s", sc->dirs[d]);
            continue;
        }
        int first = n;
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (!is_script(de->d_name))
                continue;
            char **grown = realloc(out, sizeof *out * (size_t)(n + 1));
            if (!grown)
                break;
            out = grown;
            size_t len = strlen(sc->dirs[d]) + strlen(de->d_name) + 2;
            out[n] = malloc(len);
            if (!out[n])
                break;
            snprintf(out[n], len, "%s/%s", sc->dirs[d], de->d_name);
            n++;
        }
        closedir(dir);
        if (n - first > 1)
            qsort(out + first, (size_t)(n - first), sizeof *out, cmp_str);
    }
    *count = n;
    return out;
}

/* Loads @p path into a new state; NULL (and a log line with file:line, and *why: owned) if it
 * fails. */
static rp_lua_t *load_one(rp_scripts_t *sc, const char *path, char **why)
{
    *why = NULL;
    rp_lua_opts_t o = sc->opts;
    o.sandbox = true;
    const char *base = strrchr(path, '/');
    o.name = base ? base + 1 : path;
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(sc->s, sc->e, &o, &err);
    if (!l) {
        say(sc, "error", "script failed to load file=%s error=%s", path, err.msg);
        *why = strdup(err.msg);
        return NULL;
    }
    rp_lua_set_log(l, sc->log, sc->log_ud);
    if (rp_lua_run_file(l, path, 0, NULL, NULL, &err)) {
        say(sc, "error", "script failed to load file=%s error=%s", path, err.msg);
        *why = strdup(err.msg);
        rp_lua_free(l);
        return NULL;
    }
    return l;
}

static bool mtime_of(const char *path, struct timespec *ts)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *ts = st.st_mtim;
    return true;
}

rp_scripts_t *rp_scripts_load(rp_store_t *s, rp_sched_t *e, const char *const *dirs,
                              const rp_lua_opts_t *opts, rp_log_fn log, void *log_ud)
{
    rp_scripts_t *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->s = s;
    sc->e = e;
    sc->opts = opts ? *opts : (rp_lua_opts_t){0};
    sc->log = log;
    sc->log_ud = log_ud;
    int nd = 0;
    while (dirs && dirs[nd])
        nd++;
    sc->dirs = calloc((size_t)nd + 1, sizeof *sc->dirs);
    for (int i = 0; i < nd; i++)
        sc->dirs[i] = strdup(dirs[i]);
    rp_scripts_reload(sc);
    return sc;
}

int rp_scripts_reload(rp_scripts_t *sc)
{
    int nfiles = 0, loaded = 0;
    char **files = list_files(sc, &nfiles);
    for (int i = 0; i < nfiles; i++) {
        script_t *have = NULL;
        for (int j = 0; j < sc->n && !have; j++)
            if (strcmp(sc->list[j].path, files[i]) == 0)
                have = &sc->list[j];
        struct timespec mt = {0};
        mtime_of(files[i], &mt);
        if (have && have->mtime.tv_sec == mt.tv_sec && have->mtime.tv_nsec == mt.tv_nsec)
            continue;
        char *why = NULL;
        rp_lua_t *l = load_one(sc, files[i], &why);
        if (have) {
            have->mtime = mt; /* a broken edit is reported once, not on every check */
            free(have->error);
            have->error = why;
            if (!l)
                continue;     /* the previous version keeps running */
            rp_lua_free(have->l);
            have->l = l;
            say(sc, "info", "script reloaded file=%s", files[i]);
        } else {
            script_t *grown = realloc(sc->list, sizeof *grown * (size_t)(sc->n + 1));
            if (!grown) {
                rp_lua_free(l);
                free(why);
                continue;
            }
            sc->list = grown;
            sc->list[sc->n++] = (script_t){strdup(files[i]), mt, l, why};
            if (l)
                say(sc, "info", "script loaded file=%s", files[i]);
        }
        loaded += l != NULL;
    }
    /* A script whose file is gone stops: its hooks, handlers and jobs go with it. */
    for (int j = sc->n - 1; j >= 0; j--) {
        bool present = false;
        for (int i = 0; i < nfiles && !present; i++)
            present = strcmp(sc->list[j].path, files[i]) == 0;
        if (present)
            continue;
        if (sc->list[j].l)
            say(sc, "info", "script removed file=%s", sc->list[j].path);
        rp_lua_free(sc->list[j].l);
        free(sc->list[j].path);
        free(sc->list[j].error);
        memmove(&sc->list[j], &sc->list[j + 1], sizeof *sc->list * (size_t)(sc->n - j - 1));
        sc->n--;
    }
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return loaded;
}

int rp_scripts_broken(const rp_scripts_t *sc)
{
    int n = 0;
    for (int i = 0; sc && i < sc->n; i++)
        n += sc->list[i].l == NULL;
    return n;
}

int rp_scripts_count(const rp_scripts_t *sc)
{
    int n = 0;
    for (int i = 0; sc && i < sc->n; i++)
        n += sc->list[i].l != NULL;
    return n;
}

json_t *rp_scripts_describe(const rp_scripts_t *sc)
{
    json_t *out = json_array();
    for (int i = 0; out && sc && i < sc->n; i++) {
        const script_t *t = &sc->list[i];
        json_array_append_new(out, json_pack("{s:s,s:b,s:s?}", "file", t->path, "running",
                                             t->l != NULL, "error", t->error));
    }
    return out;
}

const char *const *rp_scripts_dirs(const rp_scripts_t *sc)
{
    return sc ? (const char *const *)sc->dirs : NULL;
}

void rp_scripts_free(rp_scripts_t *sc)
{
    if (!sc)
        return;
    for (int i = sc->n - 1; i >= 0; i--) {
        rp_lua_free(sc->list[i].l);
        free(sc->list[i].path);
        free(sc->list[i].error);
    }
    free(sc->list);
    for (int i = 0; sc->dirs && sc->dirs[i]; i++)
        free(sc->dirs[i]);
    free(sc->dirs);
    free(sc);
}
