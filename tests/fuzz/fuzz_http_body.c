/*
 * fuzz_http_body.c — libFuzzer target for how the HTTP API reads a write's body
 * (rp__http_body_object in core/http/request.c) and answers a refusal (rp__http_problem_doc): any
 * bytes, under any Content-Type, either parse into a JSON object or are refused with 400, 415 or
 * 422 and a sentence; and every refusal becomes a problem document that is JSON with that status,
 * its title and the detail, never the bare 500 kept for running out of memory.
 * The first byte picks the Content-Type: application/json, a +json type with parameters, none,
 * or the bytes up to the first newline. The rest is the body.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks the problem document answering @p status with @p detail (and @p field). */
static void check_problem(int status, const char *detail, const char *field)
{
    char *doc = rp__http_problem_doc(status, detail, field);
    json_t *p, *d;

    if (doc == NULL)
        __builtin_trap();
    p = json_loads(doc, 0, NULL);
    if (!json_is_object(p) || json_integer_value(json_object_get(p, "status")) != status ||
        !json_is_string(json_object_get(p, "title")))
        __builtin_trap();
    /* The detail says something, unless all it held was the code ("RP-E1205: "). */
    d = json_object_get(p, "detail");
    if (!json_is_string(d) ||
        (json_string_length(d) == 0 && !json_is_string(json_object_get(p, "code"))))
        __builtin_trap();
    if (field && *field && !json_is_string(json_object_get(p, "field")))
        __builtin_trap();
    json_decref(p);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"application/json",
                                        "application/merge-patch+json; charset=utf-8", NULL};
    char ctype[256], detail[600] = "";
    const char *ct, *body;
    size_t len;
    int status = 0;
    json_t *j;

    if (size == 0)
        return 0;
    ct = types[data[0] % 4 < 3 ? data[0] % 4 : 0];
    body = (const char *)data + 1;
    len = size - 1;
    if (data[0] % 4 == 3) {
        const char *nl = memchr(body, '\n', len);
        size_t n = nl ? (size_t)(nl - body) : len;

        if (n >= sizeof ctype || memchr(body, '\0', n) != NULL)
            return 0; /* h2o refuses such a header line before the body is read */
        memcpy(ctype, body, n);
        ctype[n] = '\0';
        ct = ctype;
        body += nl ? n + 1 : n;
        len -= nl ? n + 1 : n;
    }

    j = rp__http_body_object(ct, body, len, &status, detail, sizeof detail);
    if (j != NULL) {
        if (!json_is_object(j))
            __builtin_trap();
        json_decref(j);
    } else {
        if ((status != 400 && status != 415 && status != 422) || detail[0] == '\0')
            __builtin_trap();
        check_problem(status, detail, NULL);
    }
    /* The detail of a store refusal echoes what the client sent (a field, a value): the body
     * itself, as text, must make a document too, with its "RP-Ennnn: " taken apart. */
    if (len < 512 && memchr(body, '\0', len) == NULL) {
        char echo[512];

        memcpy(echo, body, len);
        echo[len] = '\0';
        if (len > 0)
            check_problem(422, echo, echo);
    }
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
