/*
 * fuzz_mail_in.c — libFuzzer target for the incoming-mail reader (plugins/collaborative/
 * mail_in.c): any bytes either parse or are refused with a message (and an empty result); a
 * parsed message has only valid UTF-8 strings, lower-cased addresses with an '@', ids in "<…>",
 * counts within the reader's caps and matching their arrays, a kind in range with `why` set
 * exactly when it is not a plain message, and bounce fields only on a bounce.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_mail_in: check failed: %s (line %d)\n", #cond, __LINE__);        \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), written here rather
 * than taken from GLib so that the oracle is not the code it checks. */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p, n, cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* A one-line value: UTF-8 without control characters. NULL passes when @p may_be_null. */
static void check_line(const char *s, int may_be_null)
{
    if (s == NULL) {
        CHECK(may_be_null);
        return;
    }
    CHECK(utf8_ok(s));
    for (const char *p = s; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7F);
}

static void check_address(const char *a)
{
    check_line(a, 0);
    CHECK(strchr(a, '@') != NULL && strchr(a, ' ') == NULL);
    for (const char *p = a; *p; p++)
        CHECK(!(*p >= 'A' && *p <= 'Z'));
}

static void check_id(const char *id)
{
    if (id == NULL)
        return;
    check_line(id, 0);
    size_t n = strlen(id);
    CHECK(n >= 3 && id[0] == '<' && id[n - 1] == '>' && strchr(id, ' ') == NULL);
}

static void check_list(char **arr, int n, int cap, void (*each)(const char *))
{
    CHECK(n >= 0 && n <= cap && (n == 0) == (arr == NULL));
    for (int i = 0; i < n; i++)
        each(arr[i]);
}

static void check_parsed(const cm_incoming *m)
{
    if (m->from_addr != NULL)
        check_address(m->from_addr);
    check_line(m->from_name, 1);
    CHECK(m->from_name == NULL || m->from_name[0] != '\0');
    check_list(m->to, m->nto, 256, check_address);
    check_line(m->subject, 0);
    check_id(m->message_id);
    check_id(m->in_reply_to);
    check_list(m->references, m->nrefs, 128, check_id);
    CHECK(m->text != NULL && utf8_ok(m->text) && strlen(m->text) <= (4u << 20));
    CHECK(m->html == NULL || (utf8_ok(m->html) && strlen(m->html) <= (4u << 20)));
    CHECK(m->kind == CM_IN_MESSAGE || m->kind == CM_IN_AUTO_REPLY || m->kind == CM_IN_BOUNCE);
    CHECK((m->why == NULL) == (m->kind == CM_IN_MESSAGE));
    check_line(m->why, 1);
    check_list(m->bounced, m->nbounced, 256, check_address);
    check_line(m->bounce_status, 1);
    check_id(m->bounced_message_id);
    CHECK(m->bounce_permanent == 0 || m->bounce_permanent == 1);
    if (m->kind != CM_IN_BOUNCE)
        CHECK(m->nbounced == 0 && m->bounce_status == NULL && m->bounce_permanent == 0 &&
              m->bounced_message_id == NULL);
    CHECK(m->natt >= 0 && m->natt <= 64 && (m->natt == 0) == (m->att == NULL));
    for (int i = 0; i < m->natt; i++) {
        const cm_in_attachment *a = &m->att[i];
        check_line(a->filename, 1);
        CHECK(a->filename == NULL || (a->filename[0] != '\0' && strchr(a->filename, '/') == NULL &&
                                      strchr(a->filename, '\\') == NULL));
        check_line(a->content_type, 0);
        CHECK(a->data != NULL && a->data[a->len] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_incoming m;
    char err[256] = "";
    static const cm_incoming empty;

    if (cm_mime_parse((const char *)data, size, &m, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        CHECK(memcmp(&m, &empty, sizeof m) == 0);
        return 0;
    }
    check_parsed(&m);
    cm_incoming_free(&m);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
