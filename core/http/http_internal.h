/*
 * http_internal.h — the parts of the HTTP room that need no connection: how a request body
 * becomes the JSON a write takes, how a refusal becomes a problem document (shared with the
 * fuzz target tests/fuzz/fuzz_http_body.c), and the OpenAPI document (openapi.c).
 */
#ifndef RAPPORT_HTTP_INTERNAL_H
#define RAPPORT_HTTP_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "rapport/error.h"
#include "rapport/store.h"

/**
 * Parses the @p len bytes at @p body, sent with the Content-Type header @p ctype (NULL: none),
 * as a write's body: a JSON object. Returns it (owned: json_decref), or NULL with *status
 * (415: not JSON by its type; 400: empty or malformed; 422: JSON but not an object) and a
 * sentence saying what is wrong in the @p cap bytes at @p detail.
 */
json_t *rp__http_body_object(const char *ctype, const char *body, size_t len, int *status,
                             char *detail, size_t cap);

/**
 * The problem document (RFC 9457) answering @p status with @p detail and, when not NULL or
 * empty, @p field. An "RP-Ennnn: " in @p detail (at its start or after a batch's "record N: ")
 * becomes "code". Returns compact JSON text (owned: free()), or NULL when out of memory.
 */
char *rp__http_problem_doc(int status, const char *detail, const char *field);

/**
 * The OpenAPI 3 document of the API for the entities of @p s (owned: json_decref), or NULL
 * with @p err filled when the registry cannot be read.
 */
json_t *rp__http_openapi(rp_store_t *s, rp_error_t *err);

#endif
