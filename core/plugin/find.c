/*
 * find.c — a plugin's reads of many records: api->find, a page as JSON text written straight
 * from the rows, and api->find_rows, the same page handed over a record at a time as the text
 * of its fields, with no JSON at all (for scans of a whole table). Both read as the plugin's
 * caller may: the store applies the role and field security.
 */
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "rapport/jsontext.h"

/* The query @p query (find's JSON) as the store's, its field names into @p fields (65 slots);
 * NULL, with the host's last error, when it is not JSON. */
static json_t *query_of(rapport_host *h, const char *entity, const char *query,
                        const char *fields[65], rp_query_t *rq)
{
    json_error_t je;
    json_t *q = query ? json_loads(query, JSON_DECODE_ANY, &je) : json_object();
    if (!q) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "the query is not valid JSON: line %d, column %d: %s",
                        je.line, je.column, je.text);
        return NULL;
    }
    json_t *jf = json_object_get(q, "fields");
    for (size_t i = 0; json_is_array(jf) && i < json_array_size(jf) && i < 64; i++)
        fields[i] = json_string_value(json_array_get(jf, i));
    *rq = (rp_query_t){.entity = entity,
                       .where = json_object_get(q, "where"),
                       .order = json_string_value(json_object_get(q, "order")),
                       .limit = json_integer_value(json_object_get(q, "limit")),
                       .offset = json_integer_value(json_object_get(q, "offset")),
                       .after = json_string_value(json_object_get(q, "after")),
                       .fields = json_is_array(jf) ? fields : NULL,
                       .with_deleted = json_is_true(json_object_get(q, "deleted")),
                       .access = h->ctx.access};
    return q;
}

static int failed(rapport_host *h, int rc, const rp_error_t *err)
{
    return (int)(rc ? rp__plugin_fail(h, rc, "%s", err->msg) : rp__plugin_fail(h, 0, "%s", ""));
}

char *rp__plugin_find(rapport_host *h, const char *entity, const char *query)
{
    const char *fields[65] = {0};
    rp_query_t rq;
    json_t *q = query_of(h, entity, query, fields, &rq);
    if (!q)
        return NULL;
    /* The page is written straight from the rows (the store's text path: the same reads and
     * access as rp_store_find), byte for byte what dumping {"data": rows, "next": cursor}
     * gave; a scan over a million records built and freed a tree per record here. */
    rp_jtext_t page = {0};
    rp_jt_lit(&page, "{\"data\":");
    char *next = NULL;
    rp_error_t err = {0};
    int rc = rp_store_find_text(h->P->s, &rq, &page, &next, &err);
    json_decref(q);
    if (failed(h, rc, &err)) {
        rp_jt_free(&page);
        free(next);
        return NULL;
    }
    if (next) {
        rp_jt_lit(&page, ",\"next\":");
        rp_jt_str(&page, next, strlen(next));
        free(next);
    }
    rp_jt_lit(&page, "}");
    char *out = rp_jt_take(&page, NULL);
    if (!out)
        rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
    return out;
}

int rp__plugin_find_rows(rapport_host *h, const char *entity, const char *query,
                         int (*row)(void *ud, int n, const char *const *values,
                                    const size_t *lens),
                         void *ud, char **next)
{
    if (next)
        *next = NULL;
    if (!row || !next)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "find_rows needs a row function and "
                                                       "somewhere to put the cursor");
    const char *fields[65] = {0};
    rp_query_t rq;
    json_t *q = query_of(h, entity, query, fields, &rq);
    if (!q)
        return RAPPORT_EINVAL;
    size_t nf = json_array_size(json_object_get(q, "fields"));
    if (nf > 64) { /* not cut to 64: the row function would count on every one */
        json_decref(q);
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "find_rows reads 1 to 64 fields, not %zu",
                                    nf);
    }
    rp_error_t err = {0};
    int rc = rp_store_find_rows(h->P->s, &rq, row, ud, next, &err);
    json_decref(q);
    if (rc && !err.code) { /* the row function stopped the read: its own code */
        rp__plugin_fail(h, 0, "%s", "");
        return rc;
    }
    return failed(h, rc, &err);
}
