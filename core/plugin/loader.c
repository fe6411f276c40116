/*
 * loader.c — loading plugins: discovery, the ABI and descriptor checks, dependency order, init
 * inside a transaction (so a failing init leaves no entity, hook or handler behind), unloading,
 * and the ways the rest of the engine reaches what plugins registered (commands, routes).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"

/* ---- loading ----------------------------------------------------------------------------- */

static void host_free(rapport_host *h)
{
    if (!h)
        return;
    if (h->dl)
        dlclose(h->dl);
    free(h->file);
    free(h->dir);
    free(h->scripts);
    json_decref(h->entities);
    json_decref(h->hooks);
    json_decref(h->handlers);
    json_decref(h->jobs);
    json_decref(h->schedules);
    json_decref(h->lua);
    json_decref(h->commands);
    json_decref(h->routes);
    json_decref(h->formats);
    json_decref(h->docs);
    free(h);
}

/* Removes every registration of @p h (after a failed init, or at unload). */
static void unregister(rp_plugins_t *P, rapport_host *h)
{
    rp_hooks_remove_owner(P->s, h->owner);
    if (P->e)
        rp_sched_unregister_owner(P->e, h->owner);
    rp_lua_ext_t **link = &P->ext_head;
    for (reg_t **rp = &P->regs; *rp;) {
        reg_t *r = *rp;
        if (r->h != h) {
            rp = &r->next;
            continue;
        }
        *rp = r->next;
        free(r);
    }
    /* Rebuild the Lua list from what is left. */
    *link = NULL;
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->kind == 4) {
            r->ext.next = P->ext_head;
            P->ext_head = &r->ext;
        }
    }
}

static int semver_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        long x = a ? strtol(a, (char **)&a, 10) : 0, y = b ? strtol(b, (char **)&b, 10) : 0;
        if (x != y)
            return x < y ? -1 : 1;
        if (a && *a == '.')
            a++;
        if (b && *b == '.')
            b++;
    }
    return 0;
}

static bool semver_ok(const char *v)
{
    int parts = 0;
    const char *p = v;
    if (!p)
        return false;
    while (*p) {
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        parts++;
        if (*p == '.')
            p++;
        else if (*p == '-' || *p == '+')
            break; /* pre-release or build metadata */
        else if (*p)
            return false;
    }
    return parts == 3;
}

/* Opens one file and checks its descriptor; NULL with @p err filled when it is refused. */
static rapport_host *open_one(rp_plugins_t *P, const char *file, rp_error_t *err)
{
    rapport_host *h = calloc(1, sizeof *h);
    if (!h) {
        rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        return NULL;
    }
    h->P = P;
    h->file = strdup(file);
    h->dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN, "plugin file %s is not a loadable shared object: %s",
                     file, dlerror());
        goto fail;
    }
    rapport_entry_fn entry = (rapport_entry_fn)dlsym(h->dl, RAPPORT_PLUGIN_ENTRY_NAME);
    if (!entry) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin file %s has no entry function %s (export it with RAPPORT_EXPORT)",
                     file, RAPPORT_PLUGIN_ENTRY_NAME);
        goto fail;
    }
    h->desc = entry();
    if (!h->desc) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN, "plugin file %s: its entry function returned "
                     "no descriptor", file);
        goto fail;
    }
    const char *name = h->desc->name ? h->desc->name : "(unnamed)";
    if (h->desc->abi != RAPPORT_PLUGIN_ABI) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin %s (%s) was built for plugin ABI %u; this engine speaks ABI %d: "
                     "rebuild it against this engine's rapport_plugin.h",
                     name, file, h->desc->abi, RAPPORT_PLUGIN_ABI);
        goto fail;
    }
    if (!rp_store_name_ok(name) || !semver_ok(h->desc->version) || !h->desc->init) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin %s (%s) has a bad descriptor: it needs a lower-case name, a version "
                     "MAJOR.MINOR.PATCH (got %s) and an init function",
                     name, file, h->desc->version ? h->desc->version : "none");
        goto fail;
    }
    snprintf(h->owner, sizeof h->owner, "plugin:%s", name);
    snprintf(h->actor, sizeof h->actor, "plugin:%s", name);
    h->ctx = (rp_ctx_t){.actor = h->actor, .origin = name};
    char dir[4096];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    h->dir = strdup(dir);
    char scripts[4200];
    snprintf(scripts, sizeof scripts, "%s/scripts", dir);
    struct stat st;
    if (stat(scripts, &st) == 0 && S_ISDIR(st.st_mode))
        h->scripts = strdup(scripts);
    h->entities = json_array();
    h->hooks = json_array();
    h->handlers = json_array();
    h->jobs = json_array();
    h->schedules = json_array();
    h->lua = json_array();
    h->commands = json_array();
    h->routes = json_array();
    h->formats = json_array();
    return h;
fail:
    host_free(h);
    return NULL;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && strcmp(s + n - m, suf) == 0;
}

/* Collects the plugin files of a folder: *.so, and <sub>/<sub>.so. */
static int find_files(const char *dir, char ***files, int *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            snprintf(path, sizeof path, "%s/%s/%s.so", dir, de->d_name, de->d_name);
            if (stat(path, &st) != 0)
                continue;
        } else if (!has_suffix(de->d_name, ".so")) {
            continue;
        }
        char **grown = realloc(*files, sizeof **files * (size_t)(*n + 1));
        if (!grown)
            break;
        *files = grown;
        (*files)[(*n)++] = strdup(path);
    }
    closedir(d);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rapport_host *by_name(rp_plugins_t *P, const char *name)
{
    for (int i = 0; i < P->n; i++)
        if (P->list[i] && strcmp(P->list[i]->desc->name, name) == 0)
            return P->list[i];
    return NULL;
}

/* Refuses or skips a plugin: with skip_broken it is dropped and said; else the load fails. */
static int refuse(rp_plugins_t *P, int i, rp_error_t *why, rp_error_t *err)
{
    if (!P->o.skip_broken) {
        *err = *why;
        return RP_EINVAL;
    }
    if (P->o.log) {
        char msg[600];
        snprintf(msg, sizeof msg, "skipping broken plugin: %s", why->msg);
        P->o.log(P->o.log_ud, "warn", "plugins", msg);
    }
    if (i >= 0) {
        host_free(P->list[i]);
        P->list[i] = NULL;
    }
    return 0;
}

/* Dependency check and init order (a depth-first topological sort that names a cycle). */
static int visit(rp_plugins_t *P, rapport_host *h, int *mark, rapport_host **order, int *norder,
                 rapport_host **stack, int depth, rp_error_t *err)
{
    int i = 0;
    while (P->list[i] != h)
        i++;
    if (mark[i] == 2)
        return 0;
    if (mark[i] == 1) {
        char chain[512];
        int n = 0, start = 0;
        while (stack[start] != h)
            start++;
        for (int k = start; k < depth && n < (int)sizeof chain - 80; k++)
            n += snprintf(chain + n, sizeof chain - (size_t)n, "%s -> ", stack[k]->desc->name);
        snprintf(chain + n, sizeof chain - (size_t)n, "%s", h->desc->name);
        return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                            "plugin %s (%s) is part of a dependency cycle: %s", h->desc->name,
                            h->file, chain);
    }
    mark[i] = 1;
    stack[depth] = h;
    for (const rapport_dep *d = h->desc->requires; d && d->name; d++) {
        rapport_host *dep = by_name(P, d->name);
        if (!dep)
            return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                                "plugin %s (%s) needs plugin %s%s%s, which is not loaded",
                                h->desc->name, h->file, d->name, d->min_version ? " >= " : "",
                                d->min_version ? d->min_version : "");
        if (d->min_version && semver_cmp(dep->desc->version, d->min_version) < 0)
            return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                                "plugin %s (%s) needs plugin %s >= %s, but %s is version %s (%s)",
                                h->desc->name, h->file, d->name, d->min_version, d->name,
                                dep->desc->version, dep->file);
        int rc = visit(P, dep, mark, order, norder, stack, depth + 1, err);
        if (rc)
            return rc;
    }
    mark[i] = 2;
    order[(*norder)++] = h;
    return 0;
}

static int init_one(rp_plugins_t *P, rapport_host *h, rp_error_t *err)
{
    rp_error_t e2 = {0};
    int rc = rp_store_begin(P->s, &e2);
    if (rc) {
        *err = e2;
        return rc;
    }
    char msg[512] = "";
    rc = h->desc->init(h, &rp__plugin_api, msg, sizeof msg);
    if (rc) {
        /* Undo it all: its writes (entities, fields) with the transaction, the rest by owner. */
        rp_store_rollback(P->s, NULL);
        unregister(P, h);
        return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                            "plugin %s (%s) failed to start: %s; everything it registered was "
                            "removed",
                            h->desc->name, h->file,
                            msg[0] ? msg : h->last_error[0] ? h->last_error : "init returned an error");
    }
    if ((rc = rp_store_commit(P->s, &e2))) {
        unregister(P, h);
        *err = e2;
        return rc;
    }
    h->inited = true;
    return 0;
}

int rp_plugins_load(rp_store_t *s, rp_sched_t *e, const rp_plugins_opts_t *opts,
                    rp_plugins_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_plugins_t *P = calloc(1, sizeof *P);
    if (!P)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    P->s = s;
    P->e = e;
    P->o = opts ? *opts : (rp_plugins_opts_t){0};
    char **files = NULL;
    int nfiles = 0, ngiven = 0, rc = 0;
    for (int i = 0; P->o.files && P->o.files[i]; i++) {
        char **grown = realloc(files, sizeof *files * (size_t)(nfiles + 1));
        if (!grown)
            break;
        files = grown;
        if (!(files[nfiles] = strdup(P->o.files[i])))
            break;
        ngiven = ++nfiles;
    }
    for (int i = 0; P->o.dirs && P->o.dirs[i]; i++) {
        int first = nfiles;
        find_files(P->o.dirs[i], &files, &nfiles);
        if (nfiles - first > 1)
            qsort(files + first, (size_t)(nfiles - first), sizeof *files, cmp_str);
    }
    P->list = calloc((size_t)nfiles + 1, sizeof *P->list);
    for (int i = 0; i < nfiles && !rc; i++) {
        rp_error_t why = {0};
        rapport_host *h = open_one(P, files[i], &why);
        if (!h) {
            rc = refuse(P, -1, &why, err);
            continue;
        }
        h->given = i < ngiven;
        rapport_host *dup = by_name(P, h->desc->name);
        if (dup && dup->given && !h->given) {
            host_free(h); /* the file given stands in for this one */
            continue;
        }
        if (dup) {
            rp_error_set(&why, RP_EINVAL, RP_C_PLUGIN,
                         "plugin %s (%s) has the same name as the plugin loaded from %s",
                         h->desc->name, h->file, dup->file);
            host_free(h);
            rc = refuse(P, -1, &why, err);
            continue;
        }
        P->list[P->n++] = h;
    }
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    /* Order by dependencies, dropping (with skip_broken) what cannot be satisfied, until stable. */
    rapport_host **order = calloc((size_t)P->n + 1, sizeof *order);
    rapport_host **stack = calloc((size_t)P->n + 1, sizeof *stack);
    int *mark = calloc((size_t)P->n + 1, sizeof *mark);
    int norder = 0;
    for (bool again = true; again && !rc;) {
        again = false;
        norder = 0;
        memset(mark, 0, sizeof *mark * (size_t)(P->n + 1));
        for (int i = 0; i < P->n && !rc; i++) {
            if (!P->list[i] || mark[i] == 2)
                continue;
            rp_error_t why = {0};
            if (visit(P, P->list[i], mark, order, &norder, stack, 0, &why)) {
                rc = refuse(P, i, &why, err);
                again = !rc;
                break;
            }
        }
    }
    for (int i = 0; i < norder && !rc; i++) {
        rp_error_t why = {0};
        if (init_one(P, order[i], &why) == 0) {
            order[i]->order = i;
            continue;
        }
        int idx = 0;
        while (P->list[idx] != order[i])
            idx++;
        rc = refuse(P, idx, &why, err);
        memmove(&order[i], &order[i + 1], sizeof *order * (size_t)(norder - i - 1));
        norder--;
        i--;
        /* A plugin that needed the one just dropped cannot start either. */
        for (int j = i + 1; j >= 0 && j < norder && !rc; j++) {
            for (const rapport_dep *d = order[j]->desc->requires; d && d->name; d++) {
                if (!by_name(P, d->name)) {
                    int k = 0;
                    while (k < P->n && P->list[k] != order[j])
                        k++;
                    rp_error_t w2 = {0};
                    rp_error_set(&w2, RP_EINVAL, RP_C_PLUGIN,
                                 "plugin %s (%s) needs plugin %s, which failed to start",
                                 order[j]->desc->name, order[j]->file, d->name);
                    rc = refuse(P, k, &w2, err);
                    order[j] = NULL;
                    break;
                }
            }
        }
        for (int j = i + 1; j < norder; j++)
            if (!order[j]) {
                memmove(&order[j], &order[j + 1], sizeof *order * (size_t)(norder - j - 1));
                norder--;
                j--;
            }
    }
    /* Keep the list in init order (fini walks it backwards), also when the load failed: the
     * plugins that did start are then finalized dependents first. */
    if (!rc) {
        for (int i = 0; i < norder; i++)
            P->list[i] = order[i];
        for (int i = norder; i < P->n; i++)
            P->list[i] = NULL;
        P->n = norder;
    } else {
        rapport_host **sorted = calloc((size_t)P->n + 1, sizeof *sorted);
        int k = 0;
        for (int i = 0; sorted && i < norder; i++)
            if (order[i] && order[i]->inited)
                sorted[k++] = order[i];
        for (int i = 0; sorted && i < P->n; i++)
            if (P->list[i] && !P->list[i]->inited)
                sorted[k++] = P->list[i];
        if (sorted) {
            free(P->list);
            P->list = sorted;
            P->n = k;
        }
    }
    free(order);
    free(stack);
    free(mark);
    if (rc) {
        rp_plugins_unload(P);
        return rc;
    }
    P->script_dirs = calloc((size_t)P->n + 1, sizeof *P->script_dirs);
    int k = 0;
    for (int i = 0; i < P->n; i++)
        if (P->list[i]->scripts)
            P->script_dirs[k++] = P->list[i]->scripts;
    *out = P;
    return 0;
}

void rp_plugins_unload(rp_plugins_t *P)
{
    if (!P)
        return;
    for (int i = P->n - 1; i >= 0; i--) {
        rapport_host *h = P->list[i];
        if (!h)
            continue;
        if (h->inited && h->desc->fini)
            h->desc->fini(h, &rp__plugin_api);
        unregister(P, h);
        host_free(h);
    }
    free(P->list);
    free(P->script_dirs);
    free(P);
}

int rp_plugins_count(const rp_plugins_t *P)
{
    return P ? P->n : 0;
}

json_t *rp_plugins_describe(const rp_plugins_t *P)
{
    json_t *arr = json_array();
    for (int i = 0; P && i < P->n; i++) {
        rapport_host *h = P->list[i];
        json_t *req = json_array();
        for (const rapport_dep *d = h->desc->requires; d && d->name; d++)
            json_array_append_new(req, json_sprintf("%s%s%s", d->name,
                                                    d->min_version ? " >= " : "",
                                                    d->min_version ? d->min_version : ""));
        /* The entities it owns, whether defined in this run or an earlier one. */
        json_t *sch = rp_store_schema(P->s, NULL, NULL);
        const char *ename;
        json_t *edesc;
        json_object_foreach(sch, ename, edesc) {
            const char *owner = json_string_value(json_object_get(edesc, "owner"));
            bool listed = false;
            size_t k;
            json_t *x;
            json_array_foreach(h->entities, k, x) listed = listed || !strcmp(json_string_value(x), ename);
            if (owner && !strcmp(owner, h->owner) && !listed)
                json_array_append_new(h->entities, json_string(ename));
        }
        json_decref(sch);
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "name",
                           h->desc->name, "version", h->desc->version, "abi", (int)h->desc->abi,
                           "file", h->file, "description",
                           h->desc->description ? h->desc->description : "", "requires", req,
                           "entities", h->entities, "hooks", h->hooks, "handlers", h->handlers,
                           "jobs", h->jobs, "schedules", h->schedules, "lua", h->lua, "commands",
                           h->commands, "routes", h->routes, "formats", h->formats));
    }
    return arr;
}

const rp_lua_ext_t *rp_plugins_lua(const rp_plugins_t *P)
{
    return P ? P->ext_head : NULL;
}

const char *const *rp_plugins_script_dirs(const rp_plugins_t *P)
{
    static const char *const none[] = {NULL};
    return P && P->script_dirs ? P->script_dirs : none;
}

static int run_command(reg_t *r, const rp_ctx_t *caller, int argc, char **argv)
{
    rp_ctx_t saved = r->h->ctx;
    r->h->ctx = rp__plugin_as_caller(r->h, caller);
    int rc = r->fn.command(r->h, &rp__plugin_api, argc, argv, r->ud);
    r->h->ctx = saved;
    return rc;
}

int rp_plugins_command(rp_plugins_t *P, int argc, char **argv, rp_error_t *err)
{
    return rp_plugins_command_as(P, NULL, argc, argv, err);
}

int rp_plugins_command_as(rp_plugins_t *P, const rp_ctx_t *caller, int argc, char **argv,
                          rp_error_t *err)
{
    rapport_host *h = argc > 0 ? by_name(P, argv[0]) : NULL;
    if (!h && argc > 0) {
        /* `rapport <command>`: a plugin command reached by its own name, when exactly one
         * plugin has it (`rapport demo-data`). */
        reg_t *found = NULL;
        int n = 0;
        for (reg_t *r = P->regs; r; r = r->next)
            if (r->kind == 5 && strcmp(r->name, argv[0]) == 0)
                found = r, n++;
        if (n == 1)
            return run_command(found, caller, argc, argv);
        if (n > 1) {
            rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                         "several plugins have a command \"%s\": say which, as "
                         "`rapport <plugin> %s`", argv[0], argv[0]);
            return -1;
        }
    }
    if (!h) {
        rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "no plugin named \"%s\"",
                     argc > 0 ? argv[0] : "");
        return -1;
    }
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->h == h && r->kind == 5 && argc > 1 && strcmp(r->name, argv[1]) == 0)
            return run_command(r, caller, argc - 1, argv + 1);
    }
    char list[512] = "";
    int n = 0;
    for (reg_t *r = P->regs; r; r = r->next)
        if (r->h == h && r->kind == 5 && n < (int)sizeof list - 100)
            n += snprintf(list + n, sizeof list - (size_t)n, "\n  rapport %s %s  %s",
                          h->desc->name, r->name, r->help);
    rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "plugin %s has no command \"%s\"; it has:%s",
                 h->desc->name, argc > 1 ? argv[1] : "", n ? list : " none");
    return -1;
}

/* The plugin serving record view @p sub's first word ("/timeline/contact/7"), or NULL. */
static rapport_host *record_view(rp_plugins_t *P, const char *sub)
{
    size_t n = strcspn(sub, "/");
    for (reg_t *r = P->regs; r; r = r->next)
        if (r->kind == 9 && strlen(r->name) == n && strncmp(r->name, sub, n) == 0)
            return r->h;
    return NULL;
}

int rp_plugins_route(void *ud, const char *name, const rp_http_request_t *req, int *status,
                     char **body, rp_error_t *err)
{
    rp_plugins_t *P = ud;
    *body = NULL;
    const char *sub = req->sub;
    while (*sub == '/')
        sub++;
    rapport_host *h = strcmp(name, "*") == 0 ? record_view(P, sub) : by_name(P, name);
    if (!h)
        return req->anonymous || strcmp(name, "*") == 0
                   ? RP_ENOTFOUND
                   : rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN,
                                             "no plugin named \"%s\"", name);
    /* Without a token only a public route answers; with one, only the others. */
    int kind = req->anonymous ? 8 : 6;
    reg_t *best = NULL;
    size_t best_len = 0;
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->h != h || r->kind != kind)
            continue;
        size_t n = strlen(r->name);
        bool path_ok = strncmp(sub, r->name, n) == 0 && (sub[n] == '\0' || sub[n] == '/' || !n);
        bool method_ok = !strcmp(r->help, "*") || !strcmp(r->help, req->method);
        /* The longest path that fits wins. */
        if (path_ok && method_ok && (!best || n > best_len))
            best = r, best_len = n;
    }
    if (!best)
        return RP_ENOTFOUND;
    rapport_request rq = {.method = req->method, .path = req->path,
                          .rest = sub + best_len, .query = req->query, .body = req->body,
                          .body_len = req->body_len, .user = req->user ? req->user : "",
                          .role = req->role ? req->role : "", .nheaders = req->nheaders,
                          .header_names = req->header_names,
                          .header_values = req->header_values,
                          .client = req->client ? req->client : "", .subject = req->subject};
    if (req->anonymous) {
        /* A public route acts as the plugin itself: its own context, as it stands. */
        char msg[512] = "";
        char *out = NULL;
        *status = 200;
        h->last_rc = 0;
        h->http = req;
        int rc = best->fn.route(h, &rp__plugin_api, &rq, status, &out, best->ud, msg,
                                sizeof msg);
        h->http = NULL;
        *body = out;
        if (rc) {
            free(*body);
            *body = NULL;
            return rp_error_set(err, rc, 0, "%s",
                                msg[0] ? msg : h->last_error[0] ? h->last_error
                                                                : "the route failed");
        }
        return 0;
    }
    /* The host's functions act as the caller while the route runs. A record session's
     * writes say where they came from (its role, "portal"), as through the engine's own
     * routes, also what the route then writes as the plugin on its behalf. */
    rp_ctx_t saved = h->ctx;
    h->ctx = (rp_ctx_t){.actor = req->ctx->actor,
                        .origin = req->subject && req->ctx->origin ? req->ctx->origin
                                                                   : h->ctx.origin,
                        .access = req->ctx->access};
    char msg[512] = "";
    char *out = NULL;
    *status = 200;
    h->last_rc = 0;
    h->http = req;
    int rc = best->fn.route(h, &rp__plugin_api, &rq, status, &out, best->ud, msg, sizeof msg);
    h->http = NULL;
    h->ctx = saved;
    /* A route that failed because the caller may not do what it asked is a 403, whatever
     * code the plugin chose. */
    if (rc && h->last_rc == RP_EPERM)
        rc = RP_EPERM;
    *body = out; /* api->strdup is the C library's: free() is its pair */
    if (rc) {
        free(*body);
        *body = NULL;
        return rp_error_set(err, rc, rc == RP_EPERM ? RP_C_DENIED : 0, "%s",
                            msg[0] ? msg : h->last_error[0] ? h->last_error : "the route failed");
    }
    return 0;
}
