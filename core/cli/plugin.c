/*
 * plugin.c — a vendor's first steps: `rapport plugin new NAME [DIR]` writes the SDK's plugin
 * skeleton (carried in the binary) under the vendor's name, and `rapport plugin check FILE.so`
 * loads a built plugin in a scratch engine and says what it registers, or why it is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "rapport/engine.h"
#include "rapport/plugin.h"

#include "cli.h"
#include "sdk_template.h"

#define MAX_NAME 40 /* room for <name>_note and plugin.<name>.<key> in the engine's names */

/* ---- plugin new ------------------------------------------------------------------------------ */

/* Whether @p name can be a plugin's name: a lower-case identifier the loader takes, and a
 * word Lua can write after `crm.` (the skeleton's test calls crm.<name>.notes()). */
static const char *bad_name(const char *name)
{
    static const char *const lua_words[] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
        NULL};
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME || !(name[0] >= 'a' && name[0] <= 'z'))
        return "it must be a lower-case identifier: a letter a-z, then letters, digits or _, "
                   "at most 40";
    for (size_t i = 1; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return "it must be a lower-case identifier: a letter a-z, then letters, digits or _, "
                   "at most 40";
    for (int i = 0; lua_words[i]; i++)
        if (strcmp(name, lua_words[i]) == 0)
            return "it is a Lua keyword (scripts call crm.<name>.…)";
    /* Names the engine already answers to: a plugin of that name would clash with a built-in
     * plugin at load, or hide behind crm's own table of that name. */
    static const char *const taken[] = {"rapport", "core", "crm", "operational", "analytical",
                                        "collaborative", "schema", "log", "json", "clock",
                                        "null", NULL};
    for (int i = 0; taken[i]; i++)
        if (strcmp(name, taken[i]) == 0)
            return "the engine already has that name (a built-in plugin or a crm table)";
    return NULL;
}

/* Whether @p dir can take the skeleton: absent, or an empty folder. */
static int dir_usable(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : fail("plugin new: cannot use %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail("plugin new: %s exists and is not a folder", dir);
    DIR *d = opendir(dir);
    if (!d)
        return fail("plugin new: cannot read %s: %s", dir, strerror(errno));
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d)))
        found = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return found ? fail("plugin new: %s exists and is not empty: it writes only into a new or "
                        "empty folder", dir)
                 : 0;
}

/* mkdir -p of the folders in @p path up to its last '/' (all of it when @p whole). */
static int make_dirs(const char *path, bool whole)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return fail("plugin new: the path %s is too long", path);
    char *end = whole ? buf + strlen(buf) : strrchr(buf, '/');
    if (!end)
        return 0;
    for (char *p = buf + 1; p <= end; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char was = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return fail("plugin new: cannot make the folder %s: %s", buf, strerror(errno));
        *p = was;
    }
    return 0;
}

/* @p n bytes of @p in with every "template" made @p name, appended to a new buffer. */
static char *substitute(const unsigned char *in, size_t n, const char *name, size_t *out_n)
{
    static const char word[] = "template";
    size_t wl = sizeof word - 1, nl = strlen(name), count = 0;
    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(in + i, word, wl) == 0)
            count++, i += wl - 1;
    size_t cap = n + count * nl + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + wl <= n && memcmp(in + i, word, wl) == 0) {
            memcpy(out + o, name, nl);
            o += nl;
            i += wl;
        } else {
            out[o++] = (char)in[i++];
        }
    }
    out[o] = '\0';
    *out_n = o;
    return out;
}

static int write_file(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return fail("plugin new: cannot create %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return fail("plugin new: cannot write %s: %s", path, strerror(e));
        }
        done += (size_t)w;
    }
    if (close(fd) != 0)
        return fail("plugin new: cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* Writes the skeleton's file @p f into @p dir with @p name in place of "template"; its path
 * (relative, owned: free()) in *written. */
static int write_one(const char *dir, const rp_sdk_file_t *f, const char *name, char **written)
{
    size_t pn, tn;
    char *rel = substitute((const unsigned char *)f->path, strlen(f->path), name, &pn);
    char *text = substitute(f->bytes, f->size, name, &tn);
    char path[PATH_MAX];
    int rc = 0;
    if (!rel || !text)
        rc = fail("out of memory");
    else if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path)
        rc = fail("plugin new: the path %s/%s is too long", dir, rel);
    else
        rc = make_dirs(path, false) || write_file(path, text, tn) ? EXIT_FAIL : 0;
    free(text);
    if (rc)
        free(rel);
    else
        *written = rel;
    return rc;
}

static int plugin_new(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        return usage_error("plugin", "plugin new takes a NAME and, optionally, a folder");
    const char *name = argv[2], *dir = argc == 4 ? argv[3] : argv[2];
    const char *why = bad_name(name);
    if (why)
        return usage_error("plugin", "plugin new: the name \"%s\" will not do: %s", name, why);
    if (dir_usable(dir) || make_dirs(dir, true))
        return EXIT_FAIL;
    char list[1024] = "";
    for (const rp_sdk_file_t *f = rp_sdk_template; f->path; f++) {
        char *rel = NULL;
        if (write_one(dir, f, name, &rel))
            return EXIT_FAIL; /* what was written stays, named by the message: DIR was new */
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, " %s", rel);
        free(rel);
    }
    printf("wrote the plugin %s in %s:%s\n", name, dir, list);
    printf("next: cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=<Rapport's install prefix> && "
           "cmake --build %s/build && rapport --plugins %s/build test %s/scripts\n",
           dir, dir, dir, dir, dir);
    return 0;
}

/* ---- plugin check ---------------------------------------------------------------------------- */

/* {"entity": {"field": "type", …}, …} for the entities @p p registered. */
static json_t *fields_of(rp_store_t *s, json_t *p)
{
    json_t *out = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(p, "entities"), i, e) {
        rp_error_t err = {0};
        json_t *spec = rp_store_schema(s, json_string_value(e), &err);
        json_t *fields = json_object(), *f;
        const char *k;
        json_object_foreach(json_object_get(spec, "fields"), k, f)
            json_object_set(fields, k, json_object_get(f, "type"));
        json_object_set_new(out, json_string_value(e), fields);
        json_decref(spec);
    }
    return out;
}

static int report_refusal(const char *file, const char *msg, bool as_json)
{
    if (as_json) {
        json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 0, "file", file, "error", msg);
        print_json(j, true);
        json_decref(j);
    }
    return fail("plugin check: %s is refused: %s", file, msg);
}

static int plugin_check(cli_t *c, int argc, char **argv, bool as_json)
{
    if (argc != 3)
        return usage_error("plugin", "plugin check takes one FILE.so");
    char file[PATH_MAX];
    if (!realpath(argv[2], file))
        return fail("plugin check: cannot open %s: %s", argv[2], strerror(errno));
    /* A throw-away database, with the usual plugin folders (a plugin it requires is found
     * there) and no scripts but the plugins' own; nothing runs on the real clock. */
    const char *files[] = {file, NULL}, *no_scripts[] = {NULL};
    rp_engine_opts_t o = engine_opts(c, log_quiet);
    o.db = ":memory:";
    o.create = true;
    o.user = NULL;
    o.skip_broken = false;
    o.plugin_files = files;
    o.script_dirs = no_scripts;
    o.virtual_clock = true;
    rp_engine_t *en = NULL;
    rp_error_t err = {0};
    if (rp_engine_open(&o, &en, &err))
        return report_refusal(file, err.msg, as_json);
    json_t *all = rp_plugins_describe(rp_engine_plugins(en)), *p = NULL, *x;
    size_t i;
    json_array_foreach(all, i, x) {
        const char *f = json_string_value(json_object_get(x, "file"));
        if (f && strcmp(f, file) == 0)
            p = x;
    }
    int rc = 0;
    if (!p) {
        rc = report_refusal(file, "it loaded, but the engine does not list it", as_json);
    } else {
        json_object_set_new(p, "ok", json_true());
        json_object_set_new(p, "fields", fields_of(rp_engine_store(en), p));
        if (as_json) {
            print_json(p, true);
        } else {
            printf("ok: ");
            print_plugin(p);
            if (json_array_size(json_object_get(p, "requires")) == 0)
                printf("  requires: none\n");
            const char *ent;
            json_t *fs, *t;
            json_object_foreach(json_object_get(p, "fields"), ent, fs) {
                printf("  fields of %s:", ent);
                const char *k;
                const char *sep = " ";
                json_object_foreach(fs, k, t) {
                    printf("%s%s (%s)", sep, k, json_string_value(t) ? json_string_value(t) : "?");
                    sep = ", ";
                }
                printf("\n");
            }
        }
    }
    json_decref(all);
    rp_engine_close(en);
    return rc;
}

int cmd_plugin(cli_t *c, int argc, char **argv)
{
    bool as_json = false;
    flag_value(&argc, argv, "--json", &as_json);
    if (reject_unknown_flags("plugin", argc, argv))
        return EXIT_USAGE;
    if (argc >= 2 && strcmp(argv[1], "new") == 0) {
        if (as_json)
            return usage_error("plugin", "plugin new: --json goes with plugin check");
        return plugin_new(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return plugin_check(c, argc, argv, as_json);
    return usage_error("plugin", "plugin: say new NAME [DIR] or check FILE.so");
}
