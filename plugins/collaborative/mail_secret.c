/*
 * mail_secret.c — a message whose text holds a secret (a one-time sign-in link): the
 * interaction and its events keep the text with the secret replaced by a note, and the secret
 * waits in api->secret_put, keyed by the interaction, until the message is sent or fails.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collaborative.h"

#define SECRET_MARK "{{secret}}"
#define SECRET_NOTE "[a secret, not kept]"

/* A link or a code, not a document; the whole kept value must fit secret_put's 4,096 bytes. */
enum { SECRET_MAX = 2000, NOTE_MAX = 200 };

static void key_of(int64_t id, char *key, size_t cap)
{
    snprintf(key, cap, "mail-secret:%" PRId64, id);
}

/* @p text with every @p what replaced by @p with (owned), or NULL when out of memory. */
static char *replace_all(const char *text, const char *what, const char *with)
{
    size_t wl = strlen(what), nl = strlen(with), n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += wl)
        n++;
    size_t len = strlen(text) + n * nl - n * wl;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    const char *p = text, *hit;
    while ((hit = strstr(p, what)) != NULL) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, with, nl);
        o += nl;
        p = hit + wl;
    }
    strcpy(o, p);
    return out;
}

static void wipe_free(char *s)
{
    if (s)
        sodium_memzero(s, strlen(s));
    free(s);
}

int cm_mail_secret_redact(json_t *o, json_t *fields, char *err, size_t errlen)
{
    json_t *sv = json_object_get(o, "secret");
    if (!sv)
        return 0;
    const char *secret = json_string_value(sv);
    if (!secret || !*secret || strlen(secret) > SECRET_MAX)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "secret: a text of 1 to %d bytes",
                       SECRET_MAX);
    json_t *nv = json_object_get(o, "secret_note");
    const char *note = nv ? json_string_value(nv) : SECRET_NOTE;
    if (!note || !*note || strlen(note) > NOTE_MAX || strstr(note, SECRET_MARK))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "secret_note: a text of 1 to %d bytes, "
                       "without " SECRET_MARK, NOTE_MAX);
    static const char *const parts[] = {"body", "html"};
    int marks = 0;
    for (int i = 0; i < 2; i++) {
        const char *t = json_string_value(json_object_get(fields, parts[i]));
        if (!t)
            continue;
        /* The note stands for the secret in what is kept: found elsewhere, it would be
         * replaced too when the message is built. */
        if (strstr(t, note))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: already holds the secret_note "
                           "\"%s\": choose another note", parts[i], note);
        if (strstr(t, secret))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: holds the secret itself: write "
                           SECRET_MARK " where it goes", parts[i]);
        marks += strstr(t, SECRET_MARK) != NULL;
    }
    if (!marks)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: a message with a secret needs "
                       SECRET_MARK " where the secret goes");
    for (int i = 0; i < 2; i++) {
        const char *t = json_string_value(json_object_get(fields, parts[i]));
        char *r = t ? replace_all(t, SECRET_MARK, note) : NULL;
        if (t && !r)
            return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
        if (r)
            json_object_set_new(fields, parts[i], json_string(r));
        free(r);
    }
    return 0;
}

int cm_mail_secret_keep(rapport_host *h, json_t *o, int64_t id, char *err, size_t errlen)
{
    const char *secret = json_string_value(json_object_get(o, "secret"));
    if (!secret)
        return 0;
    const char *note = json_string_value(json_object_get(o, "secret_note"));
    json_t *ttlv = json_object_get(o, "secret_ttl");
    int64_t ttl = 24 * 3600 * 1000LL;
    if (json_is_string(ttlv) &&
        (cm_api->delay_parse(h, json_string_value(ttlv), &ttl) || ttl <= 0))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "secret_ttl: \"%s\" is not a delay (\"15m\", "
                       "\"2h\")", json_string_value(ttlv));
    if (ttlv && !json_is_string(ttlv))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "secret_ttl: a delay as text (\"15m\")");
    if (!RAPPORT_HAS(cm_api, secret_put))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "secret: this engine cannot keep secrets");
    json_t *v = json_pack("{s:s,s:s}", "s", secret, "n", note ? note : SECRET_NOTE);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    char key[64];
    key_of(id, key, sizeof key);
    int rc = cm_api->secret_put(h, key, text, ttl);
    wipe_free(text);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

int cm_mail_secret_fill(rapport_host *h, int64_t id, const char **text, const char **html,
                        char **owned_text, char **owned_html, char *err, size_t errlen)
{
    *owned_text = *owned_html = NULL;
    if (!RAPPORT_HAS(cm_api, secret_take))
        return 0;
    char key[64];
    key_of(id, key, sizeof key);
    /* Read, not taken: a send that fails and is retried, or a crash before the relay said
     * yes, needs it again. cm_mail_secret_drop removes it once the message is out or failed. */
    char *kept = cm_api->secret_take(h, key, 0);
    if (!kept) {
        /* None: a message without a secret. Expired: the note must not go out in its place. */
        if (strstr(cm_api->last_error(h), "expired"))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "the message's secret expired before "
                           "it could be sent");
        return 0;
    }
    json_t *v = json_loads(kept, 0, NULL);
    sodium_memzero(kept, strlen(kept));
    cm_api->free(kept);
    const char *s = json_string_value(json_object_get(v, "s"));
    const char *n = json_string_value(json_object_get(v, "n"));
    int rc = 0;
    if (!s || !n)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "the message's kept secret is damaged");
    if (!rc && *text && !(*owned_text = replace_all(*text, n, s)))
        rc = cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    if (!rc && *html && !(*owned_html = replace_all(*html, n, s)))
        rc = cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    if (s)
        sodium_memzero((char *)s, strlen(s));
    json_decref(v);
    if (rc) {
        cm_mail_secret_wipe(*owned_text, *owned_html);
        *owned_text = *owned_html = NULL;
        return rc;
    }
    if (*owned_text)
        *text = *owned_text;
    if (*owned_html)
        *html = *owned_html;
    return 0;
}

void cm_mail_secret_wipe(char *owned_text, char *owned_html)
{
    wipe_free(owned_text);
    wipe_free(owned_html);
}

void cm_mail_secret_drop(rapport_host *h, int64_t id)
{
    if (!RAPPORT_HAS(cm_api, secret_put))
        return;
    char key[64];
    key_of(id, key, sizeof key);
    if (cm_api->secret_put(h, key, NULL, 0))
        cm_api->log(h, RAPPORT_LOG_ERROR, "interaction %" PRId64 ": cannot drop its secret: %s",
                    id, cm_api->last_error(h));
}
