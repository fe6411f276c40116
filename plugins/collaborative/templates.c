/*
 * templates.c — mail templates: a subject, a text and an HTML body per name and language, with
 * {{field}} filled from the record the mail is about and {{contact.field}} from its recipient.
 * The contact's `language` chooses the version (else plugin.collaborative.default_language,
 * else "en"); an HTML value is escaped, a subject loses line breaks, and a right-to-left
 * language (Persian, Arabic, Hebrew, Urdu…) gets its HTML wrapped in dir="rtl". The record is
 * read as the caller, so a field hidden from its role fills in as nothing, never its value.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collaborative.h"

/* A growing text. */
typedef struct buf {
    char *p;
    size_t n, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_html(buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': put(b, "&amp;", 5); break;
        case '<': put(b, "&lt;", 4); break;
        case '>': put(b, "&gt;", 4); break;
        case '"': put(b, "&quot;", 6); break;
        case '\'': put(b, "&#39;", 5); break;
        default: put(b, s, 1);
        }
    }
}

/* A field's value as text ("" for null or absent); numbers as written, booleans yes/no. */
static char *value_text(json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v))
        return json_dumps(v, JSON_ENCODE_ANY);
    return strdup("");
}

enum { HTML = 1, ONE_LINE = 2 };

/* Fills @p tpl's {{name}} and {{contact.name}} from @p rec and @p contact. A name neither
 * record's entity has (@p fields, @p cfields) is refused: it is a typo, not an empty value. */
static char *render(const char *tpl, json_t *rec, json_t *fields, json_t *contact,
                    json_t *cfields, int mode, const char *what, char *err, size_t errlen)
{
    buf_t b = {0};
    put(&b, "", 0);
    for (const char *p = tpl; *p;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            put(&b, p, strlen(p));
            break;
        }
        put(&b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            free(b.p);
            cm_fail(err, errlen, RAPPORT_EINVAL, "%s: \"{{\" without \"}}\"", what);
            return NULL;
        }
        char name[80];
        size_t n = (size_t)(close - open - 2);
        while (n && open[2] == ' ')
            open++, n--;
        while (n && open[2 + n - 1] == ' ')
            n--;
        if (n == 0 || n >= sizeof name) {
            free(b.p);
            cm_fail(err, errlen, RAPPORT_EINVAL, "%s: an empty or overlong {{name}}", what);
            return NULL;
        }
        memcpy(name, open + 2, n);
        name[n] = '\0';
        json_t *from = rec, *known = fields;
        const char *f = name;
        if (strncmp(name, "contact.", 8) == 0)
            from = contact, known = cfields, f = name + 8;
        bool sys = !strcmp(f, "id") || !strcmp(f, "created_at") || !strcmp(f, "updated_at");
        if (!sys && !json_object_get(known, f)) {
            free(b.p);
            cm_fail(err, errlen, RAPPORT_EINVAL, "%s: {{%s}} names no field", what, name);
            return NULL;
        }
        char *v = value_text(json_object_get(from, f));
        if (mode & ONE_LINE)
            for (char *q = v; q && *q; q++)
                if (*q == '\r' || *q == '\n')
                    *q = ' ';
        if (v && (mode & HTML))
            put_html(&b, v);
        else if (v)
            put(&b, v, strlen(v));
        free(v);
        p = close + 2;
    }
    if (b.oom) {
        free(b.p);
        cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}

static bool rtl(const char *lang)
{
    static const char *const r[] = {"fa", "ar", "he", "ur", "ps", "ckb", "yi", "dv", NULL};
    for (int i = 0; r[i]; i++) {
        size_t n = strlen(r[i]);
        if (strncmp(lang, r[i], n) == 0 && (lang[n] == '\0' || lang[n] == '-'))
            return true;
    }
    return false;
}

/* The template @p name in @p lang, else the default language, else any (owned), or NULL. */
static json_t *choose(rapport_host *h, const char *name, const char *lang)
{
    char def[16];
    cm_config_text(h, "default_language", "en", def, sizeof def);
    const char *tries[] = {lang, def};
    for (int i = 0; i < 2; i++) {
        if (!tries[i] || !*tries[i])
            continue;
        char err[200];
        json_t *rows = cm_find(h, "mail_template", json_pack("{s:{s:s,s:s},s:i}", "where",
                                                             "name", name, "language", tries[i],
                                                             "limit", 1), err, sizeof err);
        json_t *t = json_incref(json_array_get(rows, 0));
        json_decref(rows);
        if (t)
            return t;
    }
    return cm_find_one(h, "mail_template", "name", json_string(name));
}

static json_t *fields_of(rapport_host *h, const char *entity)
{
    json_t *s = cm_json(cm_api->schema(h, entity));
    json_t *f = json_incref(json_object_get(s, "fields"));
    json_decref(s);
    return f ? f : json_object();
}

int cm_template_apply(rapport_host *h, json_t *o, json_t *contact, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(o, "template"));
    if (!name)
        return 0;
    const char *lang = json_string_value(json_object_get(contact, "language"));
    json_t *t = choose(h, name, lang);
    if (!t)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "template: there is no mail template "
                       "\"%s\"", name);
    /* The record it is about: record = [entity, id] or "entity:id", else the contact. */
    json_t *r = json_object_get(o, "record");
    char entity[64] = "contact";
    int64_t id = json_integer_value(json_object_get(contact, "id"));
    int rc = 0;
    if (json_is_string(r) && cm_parse_target(json_string_value(r), entity, sizeof entity, &id))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "record: write it entity:id");
    else if (json_is_array(r)) {
        const char *e = json_string_value(json_array_get(r, 0));
        snprintf(entity, sizeof entity, "%s", e ? e : "");
        id = json_integer_value(json_array_get(r, 1));
    }
    json_t *rec = rc || id <= 0 ? NULL : cm_json(cm_api->get(h, entity, id));
    if (!rc && r && !rec)
        rc = cm_fail(err, errlen, RAPPORT_ENOTFOUND, "record: %s", cm_api->last_error(h));
    if (!rec)
        rec = json_object();
    json_t *fields = fields_of(h, entity), *cfields = fields_of(h, "contact");
    const char *tl = json_string_value(json_object_get(t, "language"));
    char what[120];
    snprintf(what, sizeof what, "template %s (%s)", name, tl ? tl : "?");
    const char *parts[] = {"subject", "body", "html"};
    for (int i = 0; i < 3 && !rc; i++) {
        const char *src = json_string_value(json_object_get(t, parts[i]));
        if (!src)
            continue;
        char *out = render(src, rec, fields, contact, cfields,
                           i == 0 ? ONE_LINE : i == 2 ? HTML : 0, what, err, errlen);
        if (!out) {
            rc = RAPPORT_EINVAL;
            break;
        }
        if (i == 2 && tl && rtl(tl)) {
            char *wrapped = NULL;
            if (asprintf(&wrapped, "<div dir=\"rtl\" lang=\"%s\">%s</div>", tl, out) < 0)
                wrapped = NULL;
            free(out);
            out = wrapped;
        }
        if (out)
            json_object_set_new(o, parts[i], json_string(out));
        free(out);
    }
    if (!rc && tl)
        json_object_set_new(o, "language", json_string(tl));
    json_decref(fields);
    json_decref(cfields);
    json_decref(rec);
    json_decref(t);
    return rc;
}
