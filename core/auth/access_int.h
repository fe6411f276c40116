/*
 * access_int.h — the access object as access.c and subject.c share it. Private to core/auth.
 */
#ifndef RP_AUTH_ACCESS_INT_H
#define RP_AUTH_ACCESS_INT_H

#include "rapport/access.h"

#define NAME_MAX_LEN 64

typedef struct ent_grant {
    char entity[NAME_MAX_LEN]; /* "*" for every entity not named */
    rp_scope_t scope[4];       /* by rp_perm_t */
    rp_link_t link[4];         /* where scope is RP_SCOPE_LINK: the path */
    json_t *writable;          /* ["field", …]: the only fields written, or NULL: any */
} ent_grant_t;

typedef struct field_rule {
    char entity[NAME_MAX_LEN], field[NAME_MAX_LEN];
    bool hidden; /* else read-only */
} field_rule_t;

struct rp_access {
    char user[NAME_MAX_LEN], role[NAME_MAX_LEN], team[NAME_MAX_LEN];
    char principal[NAME_MAX_LEN]; /* the role's: the entity its record principals are of */
    char subject[NAME_MAX_LEN];   /* the entity of the record acting, "" for a user */
    int64_t subject_id;
    bool all; /* the admin role without a setting of its own: everything */
    ent_grant_t *ents;
    int nents;
    field_rule_t *fields;
    int nfields;
};

/* RP_EINVAL when a link of @p a (a role just read) does not fit the registry: a field that is
 * not there or not a ref, a path that ends elsewhere than at the role's principal, a "where"
 * that is not a filter on the entity. The message says where. */
int rp__access_check_links(rp_store_t *s, const rp_access_t *a, rp_error_t *err);

/* RP_EINVAL when a name in an entity's "writable" list of @p a is not a field of that entity
 * (system fields are not: the store writes them). The message names the role, entity and
 * field. A name the role's setting @p before (may be NULL) lists already is not checked again:
 * a field dropped since (a plugin's new version no longer declaring it) is simply not written,
 * and must not stop a plugin's next offer, nor the administrator's next change, from being
 * kept. */
int rp__access_check_writable(rp_store_t *s, const rp_access_t *a, json_t *before,
                              rp_error_t *err);

#endif
