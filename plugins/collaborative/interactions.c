/*
 * interactions.c — interactions and what colleagues say about them: storing one (seen once per
 * channel and external id, linked to every record it concerns), notes with @mentions,
 * followers of a record, and each user's notifications.
 *
 * Lua: crm.collaborative.log(fields, links), note(entity, id, text [, author]),
 *      follow(entity, id, user), unfollow(entity, id, user), notifications(user [, opts]),
 *      read(user, id | "all")
 * CLI: rapport note ENTITY ID TEXT [--author USER], rapport follow|unfollow ENTITY ID USER,
 *      rapport notifications USER [--all] [--read ID|all] [--json]
 * HTTP (as the signed-in user): POST notes {entity, id, text}; GET notifications[?all=1];
 *      POST notifications/read {id | "all"}; POST follow {entity, id}; DELETE follow {entity, id}
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collaborative.h"

const char *cm_actor_user(rapport_host *h, const rapport_request *req, char *out, size_t cap)
{
    (void)h;
    snprintf(out, cap, "%s", req && req->user ? req->user : "");
    return out;
}

/* "contact:42" into @p out. */
static void target_text(const char *entity, int64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%" PRId64, entity, id);
}

/* Adds [entity, id] to @p links unless it is there. */
static void link_add(json_t *links, const char *entity, int64_t id)
{
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) {
        if (strcmp(json_string_value(json_array_get(l, 0)), entity) == 0 &&
            json_integer_value(json_array_get(l, 1)) == id)
            return;
    }
    json_array_append_new(links, json_pack("[s,I]", entity, (json_int_t)id));
}

/* Checks @p links ([[entity, id], …]) and adds what they imply (a contact's account): every
 * record must exist and be readable by the caller. */
static int links_complete(rapport_host *h, json_t *links, char *err, size_t errlen)
{
    size_t n = json_array_size(links);
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(links, i);
        const char *e = json_string_value(json_array_get(l, 0));
        json_t *jid = json_array_get(l, 1);
        if (!json_is_array(l) || !e || !json_is_integer(jid) || json_integer_value(jid) <= 0)
            return cm_fail(err, errlen, RAPPORT_EINVAL, "links[%zu]: a link is [entity, id]",
                           i + 1);
        json_t *rec = cm_json(cm_api->get(h, e, json_integer_value(jid)));
        if (!rec)
            return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "links[%zu]: %s", i + 1,
                           cm_api->last_error(h));
        json_t *acc = json_object_get(rec, "account");
        if (strcmp(e, "contact") == 0 && json_is_integer(acc))
            link_add(links, "account", json_integer_value(acc));
        json_decref(rec);
    }
    return 0;
}

/* Tells the followers of each linked record about interaction @p id (not its author). */
static int tell_followers(rapport_host *h, json_t *links, int64_t id, const char *author,
                          const char *summary, char *err, size_t errlen)
{
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) {
        char target[CM_TARGET_LEN];
        const char *e = json_string_value(json_array_get(l, 0));
        int64_t rid = json_integer_value(json_array_get(l, 1));
        target_text(e, rid, target, sizeof target);
        /* Who follows is the plugin's bookkeeping, read whatever the writer's role. */
        int was = cm_api->as_plugin(h, 1);
        json_t *f = cm_find(h, "follower", json_pack("{s:{s:s},s:i}", "where", "target", target,
                                                     "limit", 1000), err, errlen);
        cm_api->as_plugin(h, was);
        if (!f)
            return RAPPORT_EIO;
        size_t k;
        json_t *row;
        json_array_foreach(f, k, row) {
            const char *user = json_string_value(json_object_get(row, "user"));
            if (!user || (author && strcmp(user, author) == 0))
                continue;
            int rc = cm_notify(h, user, "follow", e, rid, id, summary, err, errlen);
            if (rc) {
                json_decref(f);
                return rc;
            }
        }
        json_decref(f);
    }
    return 0;
}

static int add_in_txn(rapport_host *h, json_t *fields, json_t *links, int64_t *id, bool *dup,
                      char *err, size_t errlen)
{
    const char *channel = json_string_value(json_object_get(fields, "channel"));
    const char *ext = json_string_value(json_object_get(fields, "external_id"));
    if (!channel)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "channel: an interaction needs its channel");
    if (ext && *ext) {
        /* A message seen twice (a retried webhook, a mail delivered again) is stored once. */
        char key[600];
        snprintf(key, sizeof key, "%s:%s", channel, ext);
        json_t *was = cm_find_one(h, "interaction", "ext_key", json_string(key));
        if (was) {
            *id = json_integer_value(json_object_get(was, "id"));
            *dup = true;
            json_decref(was);
            return 0;
        }
        json_object_set_new(fields, "ext_key", json_string(key));
    }
    char now[RAPPORT_TIME_LEN];
    cm_now_text(h, now);
    if (!json_is_string(json_object_get(fields, "at")))
        json_object_set_new(fields, "at", json_string(now));
    int rc = links_complete(h, links, err, errlen);
    if (rc)
        return rc;
    /* The contact it concerns, when a link names one and the fields do not. */
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) {
        if (!json_object_get(fields, "contact") &&
            strcmp(json_string_value(json_array_get(l, 0)), "contact") == 0)
            json_object_set(fields, "contact", json_array_get(l, 1));
    }
    /* The fields' contact is linked too, and with it the contact's account (also when other
     * links came first: a mail's ticket). */
    json_t *c = json_object_get(fields, "contact");
    size_t had = json_array_size(links);
    if (json_is_integer(c))
        link_add(links, "contact", json_integer_value(c));
    if (json_array_size(links) > had && (rc = links_complete(h, links, err, errlen)))
        return rc;
    char *ft = json_dumps(fields, JSON_COMPACT);
    rc = ft ? cm_api->create(h, "interaction", ft, id) : RAPPORT_ENOMEM;
    free(ft);
    if (rc)
        return cm_host_fail(h, rc, err, errlen);
    /* The stored time (the store writes it in its own form) orders the links. */
    json_t *rec = cm_json(cm_api->get(h, "interaction", *id));
    const char *at = json_string_value(json_object_get(rec, "at"));
    char atbuf[RAPPORT_TIME_LEN + 8];
    snprintf(atbuf, sizeof atbuf, "%s", at ? at : now);
    json_decref(rec);
    json_array_foreach(links, i, l) {
        char target[CM_TARGET_LEN], key[CM_TARGET_LEN + 64];
        target_text(json_string_value(json_array_get(l, 0)),
                    json_integer_value(json_array_get(l, 1)), target, sizeof target);
        /* One text that sorts as the timeline does: its index answers a page without a sort. */
        snprintf(key, sizeof key, "%s|%s|%012" PRId64, target, atbuf, *id);
        json_t *lk = json_pack("{s:I,s:s,s:s}", "interaction", (json_int_t)*id, "target", target,
                               "key", key);
        char *lt = json_dumps(lk, JSON_COMPACT);
        json_decref(lk);
        rc = lt ? cm_api->create(h, "interaction_link", lt, NULL) : RAPPORT_ENOMEM;
        free(lt);
        if (rc)
            return cm_host_fail(h, rc, err, errlen);
    }
    /* What happened, not what was said: a follower's role may not read interactions, and a
     * notification (or the digest that mails it) must not tell what the store would not. */
    char summary[200];
    snprintf(summary, sizeof summary, "new %s (%s) interaction %" PRId64, channel,
             json_string_value(json_object_get(fields, "direction")) ?: "", *id);
    return tell_followers(h, links, *id, json_string_value(json_object_get(fields, "author")),
                          summary, err, errlen);
}

int cm_interaction_add(rapport_host *h, json_t *fields, json_t *links, int64_t *id, bool *dup,
                       char *err, size_t errlen)
{
    *dup = false;
    *id = 0;
    if (!links)
        links = json_array();
    int rc = json_is_object(fields) && json_is_array(links)
                 ? 0
                 : cm_fail(err, errlen, RAPPORT_EINVAL, "an interaction is an object of fields "
                           "with an array of links");
    if (!rc && (rc = cm_api->begin(h)))
        rc = cm_host_fail(h, rc, err, errlen);
    else if (!rc) {
        rc = add_in_txn(h, fields, links, id, dup, err, errlen);
        if (rc)
            cm_api->rollback(h);
        else if ((rc = cm_api->commit(h)))
            rc = cm_host_fail(h, rc, err, errlen);
    }
    json_decref(fields);
    json_decref(links);
    return rc;
}

json_t *cm_interaction_links(rapport_host *h, int64_t id)
{
    char err[256];
    json_t *rows = cm_find(h, "interaction_link", json_pack("{s:{s:I},s:i}", "where",
                           "interaction", (json_int_t)id, "limit", 100), err, sizeof err);
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        char e[64];
        int64_t rid;
        if (cm_parse_target(json_string_value(json_object_get(r, "target")), e, sizeof e,
                            &rid) == 0)
            json_array_append_new(out, json_pack("[s,I]", e, (json_int_t)rid));
    }
    json_decref(rows);
    return out;
}

/* ---- notifications ---------------------------------------------------------------------- */

int cm_notify(rapport_host *h, const char *user, const char *kind, const char *entity,
              int64_t id, int64_t interaction, const char *text, char *err, size_t errlen)
{
    char now[RAPPORT_TIME_LEN];
    cm_now_text(h, now);
    json_t *n = json_pack("{s:s,s:s,s:s?,s:s,s:s}", "owner", user, "kind", kind, "entity",
                          entity, "text", text ? text : "", "at", now);
    if (id > 0)
        json_object_set_new(n, "record", json_integer(id));
    if (interaction > 0)
        json_object_set_new(n, "interaction", json_integer(interaction));
    char *t = json_dumps(n, JSON_COMPACT);
    json_decref(n);
    /* Written by the plugin: the caller's role need not be allowed to give a colleague a
     * record (a rep who may only create their own could not note a followed contact). */
    int was = cm_api->as_plugin(h, 1);
    int rc = t ? cm_api->create(h, "notification", t, NULL) : RAPPORT_ENOMEM;
    cm_api->as_plugin(h, was);
    free(t);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/* The @names of @p text that are users, each once (owned array). */
static json_t *mentions(rapport_host *h, const char *text)
{
    json_t *out = json_array();
    for (const char *p = text; (p = strchr(p, '@'));) {
        /* "ana@example.com" is an address, not a mention. */
        bool word_before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '.');
        const char *s = ++p;
        while (*p && (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
                      *p == '-'))
            p++;
        size_t n = (size_t)(p - s);
        if (word_before || n == 0 || n > 63)
            continue;
        char name[64];
        memcpy(name, s, n);
        name[n] = '\0';
        bool seen = false;
        size_t i;
        json_t *v;
        json_array_foreach(out, i, v) seen = seen || strcmp(json_string_value(v), name) == 0;
        json_t *u = seen ? NULL : cm_json(cm_api->user(h, name));
        if (u && !json_is_true(json_object_get(u, "disabled")))
            json_array_append_new(out, json_string(name));
        json_decref(u);
    }
    return out;
}

/* Adds a note by @p author on @p entity @p id: an internal interaction; each @mentioned user
 * is notified. */
static int note_add(rapport_host *h, const char *entity, int64_t rid, const char *text,
                    const char *author, int64_t *id, char *err, size_t errlen)
{
    if (!text || !*text)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: a note needs its text");
    if (strlen(text) > 100000)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: a note holds at most 100000 bytes");
    json_t *who = mentions(h, text);
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?}", "channel", "note", "direction",
                          "internal", "status", "logged", "visibility", "internal", "body", text,
                          "author", author && *author ? author : NULL);
    if (author && *author)
        json_object_set_new(f, "owner", json_string(author));
    int rc = cm_api->begin(h);
    if (rc) {
        json_decref(who);
        json_decref(f);
        return cm_host_fail(h, rc, err, errlen);
    }
    bool dup;
    rc = cm_interaction_add(h, f, json_pack("[[s,I]]", entity, (json_int_t)rid), id, &dup, err,
                            errlen);
    size_t i;
    json_t *u;
    json_array_foreach(who, i, u) {
        if (rc || (author && strcmp(json_string_value(u), author) == 0))
            continue;
        /* Who and where, not the note's text (see above): the note is on the timeline. */
        char msg[200];
        snprintf(msg, sizeof msg, "%.64s mentioned you in a note on %.64s %" PRId64,
                 author && *author ? author : "someone", entity, rid);
        rc = cm_notify(h, json_string_value(u), "mention", entity, rid, *id, msg, err, errlen);
    }
    json_decref(who);
    if (rc) {
        cm_api->rollback(h);
        return rc;
    }
    return cm_api->commit(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
}

static int follow_set(rapport_host *h, const char *entity, int64_t rid, const char *user,
                      bool on, char *err, size_t errlen)
{
    if (!user || !*user)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "user: who follows the record?");
    json_t *u = cm_json(cm_api->user(h, user));
    json_decref(u);
    if (!u)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "user: %s", cm_api->last_error(h));
    json_t *rec = cm_json(cm_api->get(h, entity, rid));
    json_decref(rec);
    if (!rec)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", cm_api->last_error(h));
    char target[CM_TARGET_LEN], key[CM_TARGET_LEN + 80];
    target_text(entity, rid, target, sizeof target);
    snprintf(key, sizeof key, "%s|%s", target, user);
    json_t *was = cm_find_one(h, "follower", "key", json_string(key));
    int rc = 0;
    if (on && !was) {
        json_t *f = json_pack("{s:s,s:s,s:s}", "target", target, "user", user, "key", key);
        char *t = json_dumps(f, JSON_COMPACT);
        json_decref(f);
        rc = cm_api->create(h, "follower", t, NULL);
        free(t);
    } else if (!on && was) {
        /* Gone for good: a follower is a preference, not history. */
        rc = cm_api->remove(h, "follower", json_integer_value(json_object_get(was, "id")));
    }
    json_decref(was);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/* @p user's notifications, newest first (unread only unless @p all). */
static json_t *notifications(rapport_host *h, const char *user, bool all, char *err,
                             size_t errlen)
{
    json_t *where = json_pack("{s:s}", "owner", user);
    if (!all)
        json_object_set_new(where, "read_at", json_null());
    return cm_find(h, "notification", json_pack("{s:o,s:s,s:i}", "where", where, "order",
                                                 "-at,-id", "limit", 500), err, errlen);
}

/* Marks notification @p id (0: all unread) of @p user read; *n how many. */
static int mark_read(rapport_host *h, const char *user, int64_t id, int *n, char *err,
                     size_t errlen)
{
    *n = 0;
    json_t *rows = notifications(h, user, false, err, errlen);
    if (!rows)
        return RAPPORT_EIO;
    char now[RAPPORT_TIME_LEN], patch[80];
    cm_now_text(h, now);
    snprintf(patch, sizeof patch, "{\"read_at\": \"%s\"}", now);
    size_t i;
    json_t *r;
    int rc = 0;
    bool found = id == 0;
    json_array_foreach(rows, i, r) {
        int64_t rid = json_integer_value(json_object_get(r, "id"));
        if (id && rid != id)
            continue;
        found = true;
        if ((rc = cm_api->update(h, "notification", rid, patch, 0)))
            break;
        (*n)++;
    }
    json_decref(rows);
    if (rc)
        return cm_host_fail(h, rc, err, errlen);
    return found ? 0 : cm_fail(err, errlen, RAPPORT_ENOTFOUND, "user %s has no unread "
                               "notification %" PRId64, user, id);
}

/* ---- Lua ------------------------------------------------------------------------------------ */

static json_t *args_of(const char *args)
{
    json_t *a = json_loads(args, 0, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a;
}

/* crm.collaborative.log(fields, links) -> id, duplicate */
static int lua_log(rapport_host *h, const rapport_api *api, const char *args, char **result,
                   void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *a = args_of(args);
    json_t *f = json_incref(json_array_get(a, 0)), *l = json_incref(json_array_get(a, 1));
    json_decref(a);
    if (l && json_is_object(l) && json_object_size(l) == 0) {
        json_decref(l); /* {} from an empty Lua table */
        l = json_array();
    }
    int64_t id;
    bool dup;
    int rc = cm_interaction_add(h, f, l, &id, &dup, err, errlen);
    if (!rc)
        *result = cm_dump(json_pack("{s:I,s:b}", "id", (json_int_t)id, "duplicate", dup));
    (void)api;
    return rc;
}

/* Reads (entity, id) from args[@p at], args[@p at + 1]. */
static int target_args(json_t *a, size_t at, const char **entity, int64_t *id, char *err,
                       size_t errlen)
{
    *entity = json_string_value(json_array_get(a, at));
    json_t *jid = json_array_get(a, at + 1);
    *id = json_is_integer(jid) ? json_integer_value(jid) : 0;
    if (!*entity || *id <= 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "say which record: (entity, id)");
    return 0;
}

/* crm.collaborative.note(entity, id, text [, author]) -> id */
static int lua_note(rapport_host *h, const rapport_api *api, const char *args, char **result,
                    void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *a = args_of(args);
    const char *e;
    int64_t rid, id = 0;
    int rc = target_args(a, 0, &e, &rid, err, errlen);
    if (!rc)
        rc = note_add(h, e, rid, json_string_value(json_array_get(a, 2)),
                      json_string_value(json_array_get(a, 3)), &id, err, errlen);
    if (!rc)
        *result = cm_dump(json_integer(id));
    json_decref(a);
    return rc;
}

/* crm.collaborative.follow / unfollow(entity, id, user) */
static int lua_follow(rapport_host *h, const rapport_api *api, const char *args, char **result,
                      void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)result;
    json_t *a = args_of(args);
    const char *e;
    int64_t rid;
    int rc = target_args(a, 0, &e, &rid, err, errlen);
    if (!rc)
        rc = follow_set(h, e, rid, json_string_value(json_array_get(a, 2)), ud != NULL, err,
                        errlen);
    json_decref(a);
    return rc;
}

/* crm.collaborative.notifications(user [, {all = true}]) -> list */
static int lua_notifications(rapport_host *h, const rapport_api *api, const char *args,
                             char **result, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *a = args_of(args);
    const char *user = json_string_value(json_array_get(a, 0));
    bool all = json_is_true(json_object_get(json_array_get(a, 1), "all"));
    json_t *rows = user ? notifications(h, user, all, err, errlen) : NULL;
    if (!user)
        cm_fail(err, errlen, RAPPORT_EINVAL, "notifications(user [, {all = true}])");
    json_decref(a);
    if (!rows)
        return RAPPORT_EINVAL;
    *result = cm_dump(rows);
    return 0;
}

/* crm.collaborative.read(user, id | "all") -> how many */
static int lua_read(rapport_host *h, const rapport_api *api, const char *args, char **result,
                    void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *a = args_of(args);
    const char *user = json_string_value(json_array_get(a, 0));
    json_t *which = json_array_get(a, 1);
    int64_t id = json_is_integer(which) ? json_integer_value(which) : 0;
    int rc, n = 0;
    if (!user || (!id && !(json_is_string(which) && !strcmp(json_string_value(which), "all"))))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "read(user, id | \"all\")");
    else
        rc = mark_read(h, user, id, &n, err, errlen);
    json_decref(a);
    if (!rc)
        *result = cm_dump(json_integer(n));
    return rc;
}

/* ---- commands ------------------------------------------------------------------------------ */

static int cmd_note(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)ud;
    (void)api;
    bool bad = false;
    const char *author = cm_take_opt(&argc, argv, "--author", &bad);
    char *end = NULL;
    long long rid = argc == 4 ? strtoll(argv[2], &end, 10) : 0;
    if (bad || argc != 4 || !end || *end || rid <= 0) {
        fprintf(stderr, "usage: rapport note ENTITY ID TEXT [--author USER]\n");
        return 2;
    }
    char err[512];
    int64_t id;
    if (note_add(h, argv[1], rid, argv[3], author, &id, err, sizeof err)) {
        fprintf(stderr, "rapport: note: %s\n", err);
        return 1;
    }
    printf("note %" PRId64 " on %s %lld\n", id, argv[1], rid);
    return 0;
}

static int cmd_follow(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    char *end = NULL;
    long long rid = argc == 4 ? strtoll(argv[2], &end, 10) : 0;
    const char *verb = ud ? "follow" : "unfollow";
    if (argc != 4 || !end || *end || rid <= 0) {
        fprintf(stderr, "usage: rapport %s ENTITY ID USER\n", verb);
        return 2;
    }
    char err[512];
    if (follow_set(h, argv[1], rid, argv[3], ud != NULL, err, sizeof err)) {
        fprintf(stderr, "rapport: %s: %s\n", verb, err);
        return 1;
    }
    printf("%s %s %s %lld\n", argv[3], ud ? "follows" : "no longer follows", argv[1], rid);
    return 0;
}

static int cmd_notifications(rapport_host *h, const rapport_api *api, int argc, char **argv,
                             void *ud)
{
    (void)ud;
    (void)api;
    bool bad = false;
    const char *read = cm_take_opt(&argc, argv, "--read", &bad);
    bool all = cm_take_flag(&argc, argv, "--all"), as_json = cm_take_flag(&argc, argv, "--json");
    if (bad || argc != 2) {
        fprintf(stderr, "usage: rapport notifications USER [--all] [--json] [--read ID|all]\n");
        return 2;
    }
    char err[512];
    if (read) {
        char *end;
        long long id = strcmp(read, "all") == 0 ? 0 : strtoll(read, &end, 10);
        int n;
        if ((strcmp(read, "all") && (*end || id <= 0))) {
            fprintf(stderr, "rapport: notifications: --read takes an id or \"all\"\n");
            return 2;
        }
        if (mark_read(h, argv[1], id, &n, err, sizeof err)) {
            fprintf(stderr, "rapport: notifications: %s\n", err);
            return 1;
        }
        printf("%d marked read\n", n);
        return 0;
    }
    json_t *rows = notifications(h, argv[1], all, err, sizeof err);
    if (!rows) {
        fprintf(stderr, "rapport: notifications: %s\n", err);
        return 1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (as_json) {
            char *t = json_dumps(r, JSON_COMPACT);
            printf("%s\n", t);
            free(t);
            continue;
        }
        printf("%-6lld %s %-8s %s:%lld %s%s\n",
               (long long)json_integer_value(json_object_get(r, "id")),
               json_string_value(json_object_get(r, "at")),
               json_string_value(json_object_get(r, "kind")),
               json_string_value(json_object_get(r, "entity")) ?: "-",
               (long long)json_integer_value(json_object_get(r, "record")),
               json_string_value(json_object_get(r, "text")) ?: "",
               json_is_string(json_object_get(r, "read_at")) ? " (read)" : "");
    }
    if (!as_json && json_array_size(rows) == 0)
        printf("no %snotifications for %s\n", all ? "" : "unread ", argv[1]);
    json_decref(rows);
    return 0;
}

/* ---- routes (as the signed-in user) ----------------------------------------------------- */

static int body_object(const rapport_request *req, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    *out = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    if (!json_is_object(*out)) {
        json_decref(*out);
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the body must be a JSON object");
    }
    return 0;
}

static int route_note(rapport_host *h, const rapport_api *api, const rapport_request *req,
                      int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *b;
    int rc = body_object(req, &b, err, errlen);
    if (rc)
        return rc;
    const char *e = json_string_value(json_object_get(b, "entity"));
    json_t *jid = json_object_get(b, "id");
    int64_t id = 0;
    if (!e || !json_is_integer(jid))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "a note is {entity, id, text}");
    else
        rc = note_add(h, e, json_integer_value(jid), json_string_value(json_object_get(b, "text")),
                      req->user, &id, err, errlen);
    json_decref(b);
    if (rc)
        return rc;
    *status = 201;
    *body = cm_dump(json_pack("{s:{s:I}}", "data", "id", (json_int_t)id));
    return 0;
}

static int route_notifications(rapport_host *h, const rapport_api *api,
                               const rapport_request *req, int *status, char **body, void *ud,
                               char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    if (strcmp(req->method, "POST") == 0) {
        /* POST notifications/read {"id": n} or {"id": "all"}: only the caller's own. */
        if (strcmp(req->rest, "/read") != 0)
            return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "POST notifications/read");
        json_t *b;
        int rc = body_object(req, &b, err, errlen);
        if (rc)
            return rc;
        json_t *which = json_object_get(b, "id");
        int64_t id = json_is_integer(which) ? json_integer_value(which) : 0;
        int n = 0;
        if (id <= 0 && !(json_is_string(which) && !strcmp(json_string_value(which), "all")))
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "id: a notification's id or \"all\"");
        else
            rc = mark_read(h, req->user, id, &n, err, errlen);
        json_decref(b);
        if (!rc)
            *body = cm_dump(json_pack("{s:{s:i}}", "data", "read", n));
        return rc;
    }
    if (*req->rest)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "GET notifications[?all=1]");
    bool all = strcmp(req->query, "all=1") == 0 || strcmp(req->query, "all=true") == 0;
    if (*req->query && !all)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "notifications takes only all=1");
    json_t *rows = notifications(h, req->user, all, err, errlen);
    if (!rows)
        return RAPPORT_EIO;
    *status = 200;
    *body = cm_dump(json_pack("{s:o}", "data", rows));
    return 0;
}

static int route_follow(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *b;
    int rc = body_object(req, &b, err, errlen);
    if (rc)
        return rc;
    const char *e = json_string_value(json_object_get(b, "entity"));
    json_t *jid = json_object_get(b, "id");
    bool on = strcmp(req->method, "POST") == 0;
    if (!e || !json_is_integer(jid))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "follow takes {entity, id}");
    else
        rc = follow_set(h, e, json_integer_value(jid), req->user, on, err, errlen);
    json_decref(b);
    if (!rc) {
        *status = 200;
        *body = cm_dump(json_pack("{s:{s:b}}", "data", "following", on));
    }
    return rc;
}

int cm_interactions_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    static int on = 1;
    if (api->lua_function(h, "log", lua_log, NULL) ||
        api->lua_function(h, "note", lua_note, NULL) ||
        api->lua_function(h, "follow", lua_follow, &on) ||
        api->lua_function(h, "unfollow", lua_follow, NULL) ||
        api->lua_function(h, "notifications", lua_notifications, NULL) ||
        api->lua_function(h, "read", lua_read, NULL) ||
        api->command(h, "note", "note ENTITY ID TEXT [--author USER]: an internal note; "
                                "@user mentions notify", cmd_note, NULL) ||
        api->command(h, "follow", "follow ENTITY ID USER: be told of new interactions",
                     cmd_follow, &on) ||
        api->command(h, "unfollow", "unfollow ENTITY ID USER", cmd_follow, NULL) ||
        api->command(h, "notifications", "notifications USER [--all] [--json] [--read ID|all]",
                     cmd_notifications, NULL) ||
        api->route(h, "POST", "notes", route_note, NULL) ||
        api->route(h, "*", "notifications", route_notifications, NULL) ||
        api->route(h, "POST", "follow", route_follow, NULL) ||
        api->route(h, "DELETE", "follow", route_follow, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
