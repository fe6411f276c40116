/*
 * filter.h — what query.c and aggregate.c share: a small SQL text builder with the values it
 * binds, the filter tree compiled to a WHERE clause, and the read scope of a user. Private to
 * core/store.
 */
#ifndef RP_STORE_FILTER_H
#define RP_STORE_FILTER_H

#include "internal.h"

/* ---- a small string builder and the list of values to bind ------------------------------ */

typedef struct rp__bindv {
    const rp__field_t *f; /* Bind through the field's codec; NULL binds v's text or integer. */
    json_t *v;            /* Owned reference. */
} rp__bindv_t;

typedef struct rp__qb {
    char *sql;
    size_t len, cap;
    rp__bindv_t *b;
    int nb, capb;
    int nconds;  /* field conditions compiled, against RP_FILTER_MAX_CONDITIONS */
    bool oom;
} rp__qb_t;

/* Appends formatted text; on failure sets oom and later calls do nothing. */
void rp__qb_put(rp__qb_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends @p str as it is. */
void rp__qb_put_str(rp__qb_t *q, const char *str);
/* Adds a value to bind (a new reference, taken): through field @p f's codec, or with f NULL
 * as its text or integer. A NULL value marks the builder out of memory. */
void rp__qb_bind_add(rp__qb_t *q, const rp__field_t *f, json_t *v);
/* Binds the collected values from parameter @p first on. */
int rp__qb_bind(rp__qb_t *q, rp_db_stmt_t *st, int first);
void rp__qb_free(rp__qb_t *q);

/* ---- fields, filters and scope ---------------------------------------------------------- */

/* Field @p name of @p e, or one of the system columns (id, created_at, …), or NULL. */
rp__field_t *rp__any_field(rp__entity_t *e, const char *name);
/* RP_EINVAL: unknown field @p name, with the entity's fields listed. */
int rp__no_field(rp__entity_t *e, const char *name, rp_error_t *err);
/* " WHERE …": not deleted (unless @p with_deleted) and the filter @p where (NULL for all). */
int rp__where_clause(rp__entity_t *e, json_t *where, bool with_deleted, rp__qb_t *q,
                     rp_error_t *err);
/* " AND …" limiting @p q to what @p a may read (nothing for NULL); refuses scope none and a
 * filter naming a hidden field. */
int rp__scope_clause(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, json_t *where,
                     rp__qb_t *q, rp_error_t *err);

/* rp__where_clause then rp__scope_clause, with a hidden field named anywhere in @p where
 * refused first: before its value is checked, so a malformed value tells nothing of a field
 * the reader may not know of (its type, that it exists). */
int rp__where_scoped(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, json_t *where,
                     bool with_deleted, rp__qb_t *q, rp_error_t *err);
/* Appends filter @p node on @p e (crm.find's language) compiled, values bound. */
int rp__filter_node(rp__entity_t *e, json_t *node, rp__qb_t *q, rp_error_t *err);

/* ---- linked scopes (link.c) ------------------------------------------------------------- */

/* " AND (…)" limiting @p q to the records of @p e linked to @p a's principal by its @p perm
 * grant (" AND 0" when @p a acts as no record); RP_EPERM when the registry no longer has the
 * path the role names. */
int rp__link_clause(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, rp_perm_t perm,
                    rp__qb_t *q, rp_error_t *err);
/* 1 when record @p id of @p e is linked to @p a's principal for @p perm, 0 when not, < 0 on
 * an error. */
int rp__link_holds(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, rp_perm_t perm,
                   int64_t id, rp_error_t *err);

#endif
