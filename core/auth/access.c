/*
 * access.c — roles and their grants (see rapport/access.h), and the checks the store makes
 * with them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/db.h"
#include "rapport/store.h"

/* The tables this file reads (tables.c): linking this file links them. */
extern const rp_db_schema_t rp__auth_schema;
__attribute__((used)) static const rp_db_schema_t *const needs_tables = &rp__auth_schema;
#include "rapport/access.h"
#include "rapport/write.h"

#include "access_int.h"

static const char *const perm_names[4] = {"read", "create", "update", "delete"};
static const char *const scope_names[5] = {"none", "own", "team", "all", "link"};

static int role_err(rp_error_t *err, const char *role, const char *what)
{
    return rp_error_set(err, RP_EINVAL, RP_C_ROLE, "roles.%s: %s", role, what);
}

/* Path "a.b" or "self.a" into @p l; 0, or a message in @p msg. */
static int parse_path(const char *path, rp_link_t *l, char *msg, size_t n)
{
    char buf[RP_LINK_MAX_HOPS * 64 + 8];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return snprintf(msg, n, "the path is too long"), -1;
    char *save = NULL;
    int hop = 0;
    for (char *t = strtok_r(buf, ".", &save); t; t = strtok_r(NULL, ".", &save), hop++) {
        if (hop == 0 && strcmp(t, "self") == 0) {
            l->self = true;
            continue;
        }
        if (l->npath == RP_LINK_MAX_HOPS)
            return snprintf(msg, n, "a path follows at most %d ref fields", RP_LINK_MAX_HOPS),
                   -1;
        if (!rp_store_name_ok(t) || strlen(t) >= sizeof l->path[0])
            return snprintf(msg, n, "\"%.64s\" is not a field name", t), -1;
        snprintf(l->path[l->npath++], sizeof l->path[0], "%s", t);
    }
    if (!l->self && l->npath == 0)
        return snprintf(msg, n, "the path names no field"), -1;
    if (path[0] == '.' || (*path && path[strlen(path) - 1] == '.') || strstr(path, ".."))
        return snprintf(msg, n, "\"%.100s\" is not a path (field.field…)", path), -1;
    return 0;
}

/* A scope value of entities.@p ent.@p perm: a scope's name, "self", or
 * {"link": PATH, "where": FILTER}. */
static int parse_scope(rp_access_t *a, const char *ent, const char *perm, json_t *v,
                       rp_scope_t *sc, rp_link_t *l, rp_error_t *err)
{
    char msg[400], why[200] = "";
    const char *name = json_string_value(v);
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, scope_names[i]) == 0) {
            *sc = (rp_scope_t)i;
            return 0;
        }
    json_t *path = json_is_object(v) ? json_object_get(v, "link") : NULL;
    json_t *via = json_is_object(v) ? json_object_get(v, "through") : NULL;
    if (!(name && strcmp(name, "self") == 0) && json_is_string(path) == json_is_string(via)) {
        snprintf(msg, sizeof msg, "entities.%s.%s must be \"none\", \"own\", \"team\", "
                 "\"all\", \"self\", {\"link\": \"field.field…\", \"where\": filter} or "
                 "{\"through\": \"field\"}", ent, perm);
        return role_err(err, a->role, msg);
    }
    if (strcmp(ent, "*") == 0) {
        snprintf(msg, sizeof msg, "entities.*.%s: a link names fields, so it is given per entity",
                 perm);
        return role_err(err, a->role, msg);
    }
    const char *k;
    json_t *x;
    json_object_foreach(json_is_object(v) ? v : NULL, k, x) {
        if (strcmp(k, "link") && strcmp(k, "where") && strcmp(k, "through")) {
            snprintf(msg, sizeof msg, "entities.%s.%s.%.64s is not known (link, through, where)",
                     ent, perm, k);
            return role_err(err, a->role, msg);
        }
    }
    const char *text = name ? name : json_string_value(path ? path : via);
    if (parse_path(text, l, why, sizeof why) || (via && (l->self || l->npath != 1))) {
        if (via && !why[0])
            snprintf(why, sizeof why, "\"%.64s\" must be one ref field", text);
        snprintf(msg, sizeof msg, "entities.%s.%s.%s: %s", ent, perm, via ? "through" : "link",
                 why);
        return role_err(err, a->role, msg);
    }
    l->through = via != NULL;
    json_t *where = json_is_object(v) ? json_object_get(v, "where") : NULL;
    if (where && !json_is_object(where)) {
        snprintf(msg, sizeof msg, "entities.%s.%s.where must be a filter object", ent, perm);
        return role_err(err, a->role, msg);
    }
    l->where = json_incref(where);
    *sc = RP_SCOPE_LINK;
    return 0;
}

/* entities.<ent>.writable: the names of the only fields of <ent> the role may write. Checked
 * against the registry when the role is set (rp__access_check_writable), not here: a role
 * naming a field since removed still loads, and that field is simply not written. */
static int parse_writable(rp_access_t *a, ent_grant_t *eg, json_t *v, rp_error_t *err)
{
    char msg[300];
    if (strcmp(eg->entity, "*") == 0)
        return role_err(err, a->role, "entities.*.writable: the list names fields, so it is "
                        "given per entity");
    if (!json_is_array(v)) {
        snprintf(msg, sizeof msg, "entities.%s.writable must be a list of field names "
                 "[\"field\", …]", eg->entity);
        return role_err(err, a->role, msg);
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        const char *f = json_string_value(x);
        if (!f || !rp_store_name_ok(f) || strlen(f) >= NAME_MAX_LEN) {
            char *text = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(msg, sizeof msg, "entities.%s.writable: %.80s is not a field name",
                     eg->entity, text ? text : "(a value)");
            free(text);
            return role_err(err, a->role, msg);
        }
    }
    json_decref(eg->writable);
    eg->writable = json_incref(v);
    return 0;
}

static int parse_entities(rp_access_t *a, json_t *ents, rp_error_t *err)
{
    if (!json_is_object(ents))
        return role_err(err, a->role, "\"entities\" must be an object {entity: {read, create, "
                        "update, delete}}");
    a->ents = calloc(json_object_size(ents) + 1, sizeof *a->ents);
    if (!a->ents)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    const char *name;
    json_t *g;
    json_object_foreach(ents, name, g) {
        char msg[300];
        if (strlen(name) >= NAME_MAX_LEN || !json_is_object(g)) {
            snprintf(msg, sizeof msg, "entities.%.64s must be an object {read, create, update, "
                     "delete}", name);
            return role_err(err, a->role, msg);
        }
        ent_grant_t *eg = &a->ents[a->nents++];
        snprintf(eg->entity, sizeof eg->entity, "%s", name);
        const char *k;
        json_t *v;
        json_object_foreach(g, k, v) {
            if (strcmp(k, "writable") == 0) {
                int rc = parse_writable(a, eg, v, err);
                if (rc)
                    return rc;
                continue;
            }
            int p = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(k, perm_names[i]) == 0)
                    p = i;
            if (p < 0) {
                snprintf(msg, sizeof msg, "entities.%s.%.64s: not a permission (read, create, "
                         "update, delete, writable)", name, k);
                return role_err(err, a->role, msg);
            }
            if (p == RP_PERM_CREATE) {
                if (!json_is_boolean(v)) {
                    snprintf(msg, sizeof msg, "entities.%s.create must be true or false", name);
                    return role_err(err, a->role, msg);
                }
                eg->scope[p] = json_is_true(v) ? RP_SCOPE_ALL : RP_SCOPE_NONE;
                continue;
            }
            int rc = parse_scope(a, name, k, v, &eg->scope[p], &eg->link[p], err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int parse_fields(rp_access_t *a, json_t *fields, rp_error_t *err)
{
    if (!json_is_object(fields))
        return role_err(err, a->role, "\"fields\" must be an object {\"entity.field\": "
                        "\"hidden\" or \"read_only\"}");
    a->fields = calloc(json_object_size(fields) + 1, sizeof *a->fields);
    if (!a->fields)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    const char *name;
    json_t *v;
    json_object_foreach(fields, name, v) {
        const char *dot = strchr(name, '.');
        const char *kind = json_string_value(v);
        char msg[300];
        if (!dot || dot == name || !dot[1] || dot - name >= NAME_MAX_LEN ||
            strlen(dot + 1) >= NAME_MAX_LEN) {
            snprintf(msg, sizeof msg, "fields: \"%.100s\" is not entity.field", name);
            return role_err(err, a->role, msg);
        }
        if (!kind || (strcmp(kind, "hidden") && strcmp(kind, "read_only"))) {
            snprintf(msg, sizeof msg, "fields.%.100s must be \"hidden\" or \"read_only\"", name);
            return role_err(err, a->role, msg);
        }
        field_rule_t *fr = &a->fields[a->nfields++];
        snprintf(fr->entity, sizeof fr->entity, "%.*s", (int)(dot - name), name);
        snprintf(fr->field, sizeof fr->field, "%s", dot + 1);
        fr->hidden = strcmp(kind, "hidden") == 0;
    }
    return 0;
}

int rp_access_load(rp_store_t *s, const char *user, const char *role, const char *team,
                   rp_access_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_access_t *a = calloc(1, sizeof *a);
    if (!a)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    snprintf(a->user, sizeof a->user, "%s", user ? user : "");
    snprintf(a->role, sizeof a->role, "%s", role ? role : "");
    snprintf(a->team, sizeof a->team, "%s", team ? team : "");
    char key[96];
    snprintf(key, sizeof key, "roles.%s", a->role);
    json_t *doc = NULL;
    int rc = rp_config_get(s, key, &doc, NULL);
    if (rc == RP_ENOTFOUND && strcmp(a->role, "admin") == 0) {
        a->all = true;
        *out = a;
        return 0;
    }
    if (rc) {
        rc = rc == RP_ENOTFOUND
                 ? rp_error_set(err, RP_EINVAL, RP_C_ROLE, "role \"%s\" is not defined (set "
                                "roles.%s: rapport roles set %s GRANTS)", a->role, a->role,
                                a->role)
                 : rp_error_set(err, rc, RP_C_ROLE, "cannot read roles.%s", a->role);
        free(a);
        return rc;
    }
    if (!json_is_object(doc))
        rc = role_err(err, a->role, "must be an object {\"entities\": …, \"fields\": …}");
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(doc) ? doc : NULL, k, v) {
        if (rc)
            break;
        if (strcmp(k, "entities") == 0)
            rc = parse_entities(a, v, err);
        else if (strcmp(k, "fields") == 0)
            rc = parse_fields(a, v, err);
        else if (strcmp(k, "principal") == 0) {
            if (!json_is_string(v) || !rp_store_name_ok(json_string_value(v)) ||
                strlen(json_string_value(v)) >= NAME_MAX_LEN)
                rc = role_err(err, a->role, "\"principal\" must name the entity whose records "
                              "act with this role");
            else
                snprintf(a->principal, sizeof a->principal, "%s", json_string_value(v));
        } else {
            char msg[200];
            snprintf(msg, sizeof msg, "\"%.64s\" is not known (entities, fields, principal)", k);
            rc = role_err(err, a->role, msg);
        }
    }
    json_decref(doc);
    if (rc) {
        rp_access_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int rp_access_of_user(rp_store_t *s, const char *name, rp_access_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT role, team, disabled FROM rp_users WHERE name = ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    int src = rp_db_step(st);
    if (src != RP_DB_ROW) {
        rp_db_reset(st);
        return src == RP_DB_DONE
                   ? rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "there is no user \"%s\"", name)
                   : rp_db_error(rp_store_db(s), src, "cannot read the user", err);
    }
    char role[NAME_MAX_LEN], team[NAME_MAX_LEN];
    snprintf(role, sizeof role, "%s", rp_db_col_text(st, 0));
    snprintf(team, sizeof team, "%s",
             rp_db_col_text(st, 1) ? rp_db_col_text(st, 1) : "");
    bool disabled = (int)rp_db_col_int(st, 2) != 0;
    rp_db_reset(st);
    if (disabled)
        return rp_error_set(err, RP_EPERM, RP_C_USER, "user \"%s\" is disabled", name);
    return rp_access_load(s, name, role, team, out, err);
}

void rp_access_free(rp_access_t *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nents; i++)
        for (int p = 0; p < 4; p++)
            json_decref(a->ents[i].link[p].where);
    for (int i = 0; i < a->nents; i++)
        json_decref(a->ents[i].writable);
    free(a->ents);
    free(a->fields);
    free(a);
}

const char *rp_access_user(const rp_access_t *a)
{
    return a->user;
}

const char *rp_access_role(const rp_access_t *a)
{
    return a->role;
}

const char *rp_access_team(const rp_access_t *a)
{
    return a->team;
}

rp_scope_t rp_access_scope(const rp_access_t *a, const char *entity, rp_perm_t perm)
{
    if (!a || a->all)
        return RP_SCOPE_ALL;
    const ent_grant_t *any = NULL;
    for (int i = 0; i < a->nents; i++) {
        if (strcmp(a->ents[i].entity, entity) == 0)
            return a->ents[i].scope[perm];
        if (strcmp(a->ents[i].entity, "*") == 0)
            any = &a->ents[i];
    }
    return any ? any->scope[perm] : RP_SCOPE_NONE;
}

static const field_rule_t *rule(const rp_access_t *a, const char *entity, const char *field)
{
    if (!a)
        return NULL;
    for (int i = 0; i < a->nfields; i++)
        if (strcmp(a->fields[i].field, field) == 0 &&
            (strcmp(a->fields[i].entity, entity) == 0 || strcmp(a->fields[i].entity, "*") == 0))
            return &a->fields[i];
    return NULL;
}

/* Whether @p field is left out of the "writable" list of @p a's grant on @p entity (false
 * where the grant has no list: then any field not ruled read-only is written). */
static bool unlisted(const rp_access_t *a, const char *entity, const char *field)
{
    if (!a || a->all)
        return false;
    for (int i = 0; i < a->nents; i++) {
        if (strcmp(a->ents[i].entity, entity) != 0)
            continue;
        json_t *list = a->ents[i].writable;
        if (!list)
            return false;
        size_t j;
        json_t *x;
        json_array_foreach(list, j, x)
            if (strcmp(json_string_value(x), field) == 0)
                return false;
        return true;
    }
    return false;
}

bool rp_access_hidden(const rp_access_t *a, const char *entity, const char *field)
{
    const field_rule_t *r = rule(a, entity, field);
    return r && r->hidden;
}

bool rp_access_read_only(const rp_access_t *a, const char *entity, const char *field)
{
    /* A hidden field is not written either; nor one the entity's "writable" list leaves out. */
    return rule(a, entity, field) != NULL || unlisted(a, entity, field);
}

/* For a record principal (a customer), who did something is theirs to know only when it was
 * they: another actor ("user:alice", "subscriber:rules.unusual_order") is shown as its kind
 * alone ("user", "subscriber"), so the business's user names and rule names stay inside. */
static void mask_actor(const rp_access_t *a, json_t *obj, const char *key)
{
    if (!a || !a->subject[0])
        return;
    const char *v = json_string_value(json_object_get(obj, key));
    if (!v)
        return;
    char own[sizeof a->subject + 48];
    snprintf(own, sizeof own, "record:%s:%" PRId64, a->subject, a->subject_id);
    if (strcmp(v, own) == 0)
        return;
    const char *colon = strchr(v, ':');
    json_object_set_new(obj, key, colon ? json_stringn(v, (size_t)(colon - v)) : json_string(v));
}

void rp_access_redact(const rp_access_t *a, const char *entity, json_t *obj)
{
    if (a && a->subject[0] && json_is_object(obj)) {
        mask_actor(a, obj, "created_by");
        mask_actor(a, obj, "updated_by");
        mask_actor(a, obj, "deleted_by");
    }
    if (!a || !a->nfields || !json_is_object(obj))
        return;
    for (int i = 0; i < a->nfields; i++)
        if (a->fields[i].hidden &&
            (strcmp(a->fields[i].entity, entity) == 0 || strcmp(a->fields[i].entity, "*") == 0))
            json_object_del(obj, a->fields[i].field);
}

/* ---- the checks the store makes ---------------------------------------------------------- */

/* The team of user @p name ("" when none or unknown). */
static void team_of(rp_store_t *s, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT team FROM rp_users WHERE name = ?", NULL);
    if (!st)
        return;
    rp_db_bind_text(st, 1, name, -1);
    if (rp_db_step(st) == RP_DB_ROW && rp_db_col_text(st, 0))
        snprintf(out, n, "%s", rp_db_col_text(st, 0));
    rp_db_reset(st);
}

/* The user a record belongs to: its owner, or (where it has none) its creator. */
static const char *record_user(json_t *rec, char *buf, size_t n)
{
    const char *owner = json_string_value(json_object_get(rec, "owner"));
    if (owner && *owner)
        return owner;
    const char *by = json_string_value(json_object_get(rec, "created_by"));
    if (by && strncmp(by, "user:", 5) == 0) {
        snprintf(buf, n, "%s", by + 5);
        return buf;
    }
    return "";
}

static bool az_in_scope(rp_store_t *s, const rp_access_t *a, rp_scope_t scope, json_t *rec)
{
    if (scope == RP_SCOPE_ALL)
        return true;
    /* A link is the store's to judge (it has the registry): never widened here. */
    if (scope == RP_SCOPE_NONE || scope == RP_SCOPE_LINK)
        return false;
    char buf[NAME_MAX_LEN + 8];
    const char *who = record_user(rec, buf, sizeof buf);
    if (strcmp(who, a->user) == 0)
        return true;
    if (scope != RP_SCOPE_TEAM || !*who || !a->team[0])
        return false;
    char team[NAME_MAX_LEN];
    team_of(s, who, team, sizeof team);
    return strcmp(team, a->team) == 0;
}

static int az_denied(rp_error_t *err, const rp_access_t *a, const char *entity, rp_perm_t perm,
                      const char *why)
{
    return rp_error_set(err, RP_EPERM, RP_C_DENIED, "role %s may not %s %s%s%s (missing: "
                        "%s.%s)", a->role, perm_names[perm], entity, why ? ": " : "",
                        why ? why : "", entity, perm_names[perm]);
}

static int az_record(rp_store_t *s, const rp_access_t *a, const char *entity, rp_perm_t perm,
                      json_t *rec, rp_error_t *err)
{
    if (!a || a->all)
        return 0;
    rp_scope_t sc = rp_access_scope(a, entity, perm);
    if (az_in_scope(s, a, sc, rec))
        return 0;
    if (sc == RP_SCOPE_NONE)
        return az_denied(err, a, entity, perm, NULL);
    char msg[200];
    snprintf(msg, sizeof msg, "%s %lld is outside its scope \"%s\"", entity,
             (long long)json_integer_value(json_object_get(rec, "id")), scope_names[sc]);
    return az_denied(err, a, entity, perm, msg);
}

static int az_owner(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *fields,
                     bool update, rp_error_t *err)
{
    json_t *v = json_object_get(fields, "owner");
    if (!a || a->all || !v)
        return 0;
    rp_scope_t sc = rp_access_scope(a, entity, RP_PERM_UPDATE);
    if (sc == RP_SCOPE_ALL)
        return 0;
    /* The owner as the store will keep it: a number is stored as its text. */
    char text[NAME_MAX_LEN + 8];
    const char *owner = json_string_value(v);
    if (!owner && json_is_integer(v)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        owner = text;
    } else if (!owner && !json_is_null(v)) {
        owner = "(not a user name)";
    }
    /* No owner: on a new record it is the creator's; taken off a record it hands the record
     * back to whoever created it, which only scope all may do. */
    if (!owner || !*owner) {
        if (!update)
            return 0;
        return rp_error_field(err, "owner", rp_error_set(err, RP_EPERM, RP_C_DENIED,
                              "role %s may not clear the owner of %s records (missing: %s.update "
                              "scope all)", a->role, entity, entity));
    }
    if (strcmp(owner, a->user) == 0)
        return 0;
    if (sc == RP_SCOPE_TEAM && a->team[0]) {
        char team[NAME_MAX_LEN];
        team_of(s, owner, team, sizeof team);
        if (strcmp(team, a->team) == 0)
            return 0;
    }
    return rp_error_field(err, "owner", rp_error_set(err, RP_EPERM, RP_C_DENIED,
                          "role %s may not give %s records to %s (missing: %s.update scope %s)",
                          a->role, entity, owner, entity,
                          sc == RP_SCOPE_TEAM ? "all" : "team or all"));
}

static int az_fields(const rp_access_t *a, const char *entity, json_t *fields, rp_error_t *err)
{
    if (!a || a->all || !json_is_object(fields))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v) {
        const field_rule_t *r = rule(a, entity, k);
        if (r)
            return rp_error_field(err, k, rp_error_set(err, RP_EPERM, RP_C_DENIED,
                                  "%s.%s is %s for role %s (missing: write %s.%s)", entity, k,
                                  r->hidden ? "hidden" : "read-only", a->role, entity, k));
        if (unlisted(a, entity, k))
            return rp_error_field(err, k, rp_error_set(err, RP_EPERM, RP_C_DENIED,
                                  "%s.%s is read-only for role %s (missing: %s in "
                                  "entities.%s.writable)", entity, k, a->role, k, entity));
    }
    return 0;
}

int rp_access_event(rp_store_t *s, const rp_access_t *a, json_t *ev, rp_error_t *err)
{
    if (!a || a->all)
        return 1;
    const char *entity = json_string_value(json_object_get(ev, "entity"));
    if (!entity || !*entity)
        return rp_access_scope(a, "*", RP_PERM_READ) == RP_SCOPE_ALL ? 1 : 0;
    rp_scope_t sc = rp_access_scope(a, entity, RP_PERM_READ);
    if (sc == RP_SCOPE_NONE)
        return 0;
    if (sc == RP_SCOPE_LINK) {
        /* Read as the principal would read the record now: the store judges the link. */
        rp_ctx_t ctx = {.access = a};
        json_t *rec = NULL;
        rp_error_t e2 = {0};
        int64_t id = json_integer_value(json_object_get(ev, "record_id"));
        int rc = rp_store_get_as(s, &ctx, entity, id, &rec, &e2);
        json_decref(rec);
        if (rc == RP_ENOTFOUND || rc == RP_EPERM)
            return 0;
        if (rc) {
            if (err)
                *err = e2;
            return rc;
        }
    } else if (sc != RP_SCOPE_ALL) {
        json_t *rec = NULL;
        rp_error_t e2 = {0};
        int64_t id = json_integer_value(json_object_get(ev, "record_id"));
        int rc = rp_store_get(s, entity, id, &rec, &e2);
        if (rc == RP_ENOTFOUND)
            return 0; /* purged: whose it was is not known any more */
        if (rc) {
            if (err)
                *err = e2;
            return rc;
        }
        bool in = az_in_scope(s, a, sc, rec);
        json_decref(rec);
        if (!in)
            return 0;
    }
    if (a->subject[0])
        mask_actor(a, ev, "actor");
    json_t *changes = json_object_get(ev, "changes");
    size_t before = json_object_size(changes);
    rp_access_redact(a, entity, changes);
    /* An update of hidden fields only (a rule flagging an order unusual) would still say that
     * something the reader may not see changed, and who changed it: it is not theirs to see. */
    const char *type = json_string_value(json_object_get(ev, "type"));
    size_t tn = type ? strlen(type) : 0;
    if (before && !json_object_size(changes) && tn > 8 && !strcmp(type + tn - 8, ".updated"))
        return 0;
    return 1;
}

static const rp_link_t *az_link(const rp_access_t *a, const char *entity, rp_perm_t perm)
{
    if (!a || a->all)
        return NULL;
    for (int i = 0; i < a->nents; i++)
        if (strcmp(a->ents[i].entity, entity) == 0)
            return a->ents[i].scope[perm] == RP_SCOPE_LINK ? &a->ents[i].link[perm] : NULL;
    return NULL;
}

static const char *az_principal(const rp_access_t *a, int64_t *id)
{
    if (!a || !a->subject[0])
        return NULL;
    *id = a->subject_id;
    return a->subject;
}

static const char *az_user(const rp_access_t *a) { return a->user; }
static const char *az_role(const rp_access_t *a) { return a->role; }
static const char *az_team(const rp_access_t *a) { return a->team; }

/* What the store asks about a restricted context, answered here. */
static const rp_authorizer_t authorizer = {
    .user = az_user,
    .role = az_role,
    .team = az_team,
    .scope = rp_access_scope,
    .hidden = rp_access_hidden,
    .redact = rp_access_redact,
    .in_scope = az_in_scope,
    .denied = az_denied,
    .record = az_record,
    .owner = az_owner,
    .fields = az_fields,
    .team_users_sql = "SELECT name FROM rp_users WHERE team = ?",
    .link = az_link,
    .principal = az_principal,
    .actor = mask_actor,
};

/* Installed before main(): linking this file (the only maker of an rp_access_t) is what lets
 * the store serve a restricted context at all. */
__attribute__((constructor)) static void install(void)
{
    rp_store_set_authorizer(&authorizer);
}

int rp_access_role_set(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *grants,
                       rp_error_t *err)
{
    char key[128];
    if (snprintf(key, sizeof key, "roles.%s", name) >= (int)sizeof key)
        return rp_error_set(err, RP_EINVAL, RP_C_ROLE, "the role name \"%.40s…\" is too long",
                            name);
    rp_access_t *a = NULL;
    /* Kept only if it reads back as a role: the check and the write are one transaction (a
     * level of the caller's, when one is open). */
    int depth = rp_store_txn_depth(s);
    json_t *before = NULL;
    int rc = rp_store_begin(s, err);
    if (!rc && grants)
        rp_config_get(s, key, &before, NULL); /* none: every name is checked */
    if (!rc)
        rc = rp_config_set(s, ctx, key, grants, err);
    if (!rc && grants)
        rc = rp_access_load(s, "", name, NULL, &a, err);
    if (!rc && grants)
        rc = rp__access_check_links(s, a, err);
    if (!rc && grants)
        rc = rp__access_check_writable(s, a, before, err);
    json_decref(before);
    rp_access_free(a);
    if (!rc)
        return rp_store_commit(s, err);
    while (rp_store_txn_depth(s) > depth)
        rp_store_rollback(s, NULL);
    return rc;
}
