/*
 * mail_out_helpers.h — what the two tests of outgoing mail share (test_mail_build.c and
 * test_smtp.c): a sample message with Persian text in it, built or the test fails, and read back
 * with GMime's parser.
 */
#ifndef CM_MAIL_OUT_HELPERS_H
#define CM_MAIL_OUT_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "../mail.h"

static const char *FA_SUBJECT = "سفارش شما ارسال شد";
static const char *FA_NAME = "پشتیبانی";

/** A message with every header set; tests change what they look at. */
__attribute__((unused)) static cm_outgoing sample(void)
{
    cm_outgoing m = {
        .from_name = FA_NAME,
        .from_addr = "support@shop.example",
        .to_name = "Ana Silva",
        .to_addr = "ana@example.com",
        .subject = FA_SUBJECT,
        .text = "سلام آنا،\nسفارش شما ارسال شد.\n",
        .message_id = "<0123456789abcdef@shop.example>",
        .date_ms = 1767225600123, /* 2026-01-01T00:00:00.123Z */
    };
    return m;
}

/** Builds @p m or fails the test; the bytes are malloc'd and NUL-ended. */
__attribute__((unused)) static char *build(const cm_outgoing *m, size_t *len)
{
    char *out = NULL, err[256] = "";
    size_t n = 0;
    if (cm_mime_build(m, &out, &n, err, sizeof err) != 0)
        fail_msg("cm_mime_build: %s", err);
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    if (len)
        *len = n;
    return out;
}

/** @p len bytes read by GMime as a message, or the test fails; unref it. */
__attribute__((unused)) static GMimeMessage *parse(const char *bytes, size_t len)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(bytes, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
    g_object_unref(p);
    g_object_unref(st);
    assert_non_null(msg);
    return msg;
}

/** The text of text part @p o with LF line ends; g_free it. */
__attribute__((unused)) static char *part_text(GMimeObject *o)
{
    assert_true(GMIME_IS_TEXT_PART(o));
    char *t = g_mime_text_part_get_text((GMimeTextPart *)o);
    assert_non_null(t);
    /* Back to the caller's LF line ends. */
    GString *s = g_string_new(NULL);
    for (char *p = t; *p; p++)
        if (!(p[0] == '\r' && p[1] == '\n'))
            g_string_append_c(s, *p);
    g_free(t);
    return g_string_free(s, FALSE);
}

#endif
