/*
 * collaborative.c — the part of the CRM that talks: every conversation with a customer on any
 * channel (email, SMS, phone, portal, web, social, chat) and every note between colleagues,
 * as interactions on one timeline per record; followers and notifications; the channels that
 * send and receive.
 *
 * The plugin defines its entities (and the contact fields it needs), and registers each
 * room's commands, Lua functions, routes and jobs. Settings (`rapport config set KEY VALUE`):
 *   mail.smtp.url, mail.smtp.user, mail.smtp.password (a secret), mail.from   sending email
 *   plugin.collaborative.<key>  the rest, named where each is read (README.md lists them)
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collaborative.h"

const rapport_api *cm_api;

/* ---- helpers ------------------------------------------------------------------------------ */

int cm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

int cm_refuse_offline(rapport_host *h, const char *what, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(cm_api, offline) || !cm_api->offline(h))
        return 0;
    return cm_fail(err, errlen, RAPPORT_EPERM,
                   "%s: offline (a replay, a schema diff or a dry run): it would reach a server "
                   "and nothing done here is kept, so it is not done",
                   what);
}

int cm_host_fail(rapport_host *h, int rc, char *err, size_t errlen)
{
    const char *m = cm_api->last_error(h);
    /* Never an empty message: the caller (an MTA's log, a user) must learn something. */
    if (m && *m)
        snprintf(err, errlen, "%s", m);
    else
        snprintf(err, errlen, "the engine refused it (code %d) without saying why", rc);
    return rc ? rc : RAPPORT_EINVAL;
}

json_t *cm_json(char *text)
{
    if (!text)
        return NULL;
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    cm_api->free(text);
    return j;
}

char *cm_dump(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    char *out = t ? cm_api->strdup(t) : NULL;
    free(t);
    return out;
}

json_t *cm_config(rapport_host *h, const char *key)
{
    return cm_json(cm_api->config(h, key));
}

const char *cm_config_text(rapport_host *h, const char *key, const char *def, char *out,
                           size_t cap)
{
    json_t *v = cm_config(h, key);
    bool set = json_is_string(v);
    if (set)
        snprintf(out, cap, "%s", json_string_value(v));
    else if (def)
        snprintf(out, cap, "%s", def);
    else
        out[0] = '\0';
    json_decref(v);
    return set || def ? out : NULL;
}

void cm_now_text(rapport_host *h, char *out)
{
    if (cm_api->time_format(h, cm_api->now_ms(h), out))
        snprintf(out, RAPPORT_TIME_LEN, "1970-01-01T00:00:00.000Z");
}

json_t *cm_find(rapport_host *h, const char *entity, json_t *q, char *err, size_t errlen)
{
    char *qt = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    json_t *r = cm_json(qt ? cm_api->find(h, entity, qt) : NULL);
    free(qt);
    json_t *data = json_incref(json_object_get(r, "data"));
    json_decref(r);
    if (!json_is_array(data)) {
        json_decref(data);
        cm_fail(err, errlen, RAPPORT_EIO, "%s: %s", entity, cm_api->last_error(h));
        return NULL;
    }
    return data;
}

json_t *cm_find_one(rapport_host *h, const char *entity, const char *field, json_t *value)
{
    char err[256];
    /* "o": the value is the caller's no more (every caller hands a fresh json_string). */
    json_t *rows = cm_find(h, entity, json_pack("{s:{s:o},s:i}", "where", field, value, "limit",
                                                1), err, sizeof err);
    json_t *one = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return one;
}

int cm_parse_target(const char *text, char *entity, size_t cap, int64_t *id)
{
    size_t n = strcspn(text, ":/");
    if (n == 0 || n >= cap || !text[n])
        return -1;
    memcpy(entity, text, n);
    entity[n] = '\0';
    char *end;
    long long v = strtoll(text + n + 1, &end, 10);
    if (*end || end == text + n + 1 || v <= 0)
        return -1;
    *id = v;
    return 0;
}

/* ---- command lines -------------------------------------------------------------------- */

const char *cm_take_opt(int *argc, char **argv, const char *name, bool *bad)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], name) != 0)
            continue;
        if (i + 1 >= *argc) {
            *bad = true;
            return NULL;
        }
        const char *v = argv[i + 1];
        for (int k = i; k + 2 <= *argc; k++)
            argv[k] = argv[k + 2];
        *argc -= 2;
        return v;
    }
    return NULL;
}

bool cm_take_flag(int *argc, char **argv, const char *name)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            for (int k = i; k + 1 <= *argc; k++)
                argv[k] = argv[k + 1];
            (*argc)--;
            return true;
        }
    }
    return false;
}

/* ---- consent ------------------------------------------------------------------------------ */

int cm_consent(rapport_host *h, json_t *c, const char *channel, const char *purpose, char *why,
               size_t cap)
{
    long long id = (long long)json_integer_value(json_object_get(c, "id"));
    bool marketing = strcmp(purpose, "marketing") == 0;
    if (json_is_string(json_object_get(c, "deleted_at")))
        return snprintf(why, cap, "contact %lld is deleted", id), 0;
    if (json_is_true(json_object_get(c, "do_not_contact")))
        return snprintf(why, cap, "contact %lld is marked do not contact", id), 0;
    if (strcmp(channel, "email") == 0) {
        if (json_is_true(json_object_get(c, "email_bouncing")))
            return snprintf(why, cap, "contact %lld's address bounces", id), 0;
        if (marketing && json_is_true(json_object_get(c, "email_opt_out")))
            return snprintf(why, cap, "contact %lld opted out of email", id), 0;
    } else if (strcmp(channel, "sms") == 0) {
        /* STOP opts the number out of every SMS, service included: carriers require it. */
        if (json_is_true(json_object_get(c, "sms_opt_out")))
            return snprintf(why, cap, "contact %lld opted out of SMS", id), 0;
    }
    (void)h;
    return 1;
}

/* ---- entities ----------------------------------------------------------------------------- */

static const struct {
    const char *name, *spec;
} entities[] = {
    {"thread",
     "{\"fields\": {\"subject\": {\"type\": \"text\", \"searchable\": true},"
     " \"token\": {\"type\": \"text\", \"unique\": true},"
     " \"channel\": {\"type\": \"text\"}, \"contact\": {\"type\": \"ref\", \"ref\": \"contact\","
     " \"indexed\": true}, \"ticket\": {\"type\": \"ref\", \"ref\": \"ticket\", \"indexed\": true},"
     " \"last_at\": {\"type\": \"datetime\"}, \"root_message_id\": {\"type\": \"text\","
     " \"indexed\": true}}}"},
    {"interaction",
     "{\"fields\": {\"channel\": {\"type\": \"enum\", \"values\": [\"email\", \"sms\", \"phone\","
     " \"portal\", \"web\", \"social\", \"chat\", \"note\"], \"required\": true, \"indexed\": true},"
     " \"direction\": {\"type\": \"enum\", \"values\": [\"in\", \"out\", \"internal\"],"
     " \"required\": true},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"queued\", \"sending\", \"sent\","
     " \"delivered\", \"failed\", \"bounced\", \"received\", \"missed\", \"logged\","
     " \"refused\"],"
     " \"default\": \"logged\", \"indexed\": true},"
     " \"visibility\": {\"type\": \"enum\", \"values\": [\"public\", \"internal\"],"
     " \"default\": \"public\"},"
     " \"at\": {\"type\": \"datetime\", \"indexed\": true},"
     " \"thread\": {\"type\": \"ref\", \"ref\": \"thread\", \"indexed\": true},"
     " \"author\": {\"type\": \"text\"},"
     " \"contact\": {\"type\": \"ref\", \"ref\": \"contact\", \"indexed\": true},"
     " \"subject\": {\"type\": \"text\", \"searchable\": true, \"personal\": true},"
     " \"body\": {\"type\": \"text\", \"searchable\": true, \"personal\": true},"
     " \"html\": {\"type\": \"text\", \"personal\": true},"
     " \"from_addr\": {\"type\": \"text\", \"indexed\": true, \"personal\": true},"
     " \"to_addr\": {\"type\": \"text\", \"personal\": true},"
     " \"external_id\": {\"type\": \"text\"},"
     " \"ext_key\": {\"type\": \"text\", \"unique\": true},"
     " \"in_reply_to\": {\"type\": \"text\"}, \"references\": {\"type\": \"text\"},"
     " \"purpose\": {\"type\": \"enum\", \"values\": [\"service\", \"marketing\"],"
     " \"default\": \"service\"},"
     " \"campaign\": {\"type\": \"ref\", \"ref\": \"campaign\", \"indexed\": true},"
     " \"error\": {\"type\": \"text\"}, \"attempts\": {\"type\": \"integer\", \"default\": 0},"
     " \"sent_at\": {\"type\": \"datetime\"},"
     " \"duration\": {\"type\": \"integer\"},"
     " \"recording\": {\"type\": \"url\", \"personal\": true},"
     " \"link\": {\"type\": \"url\"}, \"handle\": {\"type\": \"text\", \"personal\": true},"
     " \"rating\": {\"type\": \"integer\"},"
     " \"attachments\": {\"type\": \"json\", \"personal\": true},"
     " \"owner\": {\"type\": \"text\", \"indexed\": true}}}"},
    {"interaction_link",
     "{\"fields\": {\"interaction\": {\"type\": \"ref\", \"ref\": \"interaction\","
     " \"required\": true, \"indexed\": true},"
     " \"target\": {\"type\": \"text\", \"required\": true, \"indexed\": true},"
     " \"key\": {\"type\": \"text\", \"required\": true, \"indexed\": true}}}"},
    {"attachment",
     "{\"fields\": {\"interaction\": {\"type\": \"ref\", \"ref\": \"interaction\","
     " \"required\": true, \"indexed\": true},"
     " \"filename\": {\"type\": \"text\", \"personal\": true},"
     " \"content_type\": {\"type\": \"text\"}, \"size\": {\"type\": \"integer\"},"
     " \"parts\": {\"type\": \"integer\", \"default\": 0},"
     " \"data\": {\"type\": \"text\", \"personal\": true}}}"},
    /* A file larger than one text value holds, in order: base64 of 786,000 bytes each. */
    {"attachment_part",
     "{\"fields\": {\"attachment\": {\"type\": \"ref\", \"ref\": \"attachment\","
     " \"required\": true, \"indexed\": true}, \"seq\": {\"type\": \"integer\","
     " \"required\": true},"
     " \"data\": {\"type\": \"text\", \"required\": true, \"personal\": true}}}"},
    {"mail_template",
     "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"indexed\": true},"
     " \"language\": {\"type\": \"text\", \"default\": \"en\"},"
     " \"subject\": {\"type\": \"text\", \"required\": true},"
     " \"body\": {\"type\": \"text\"}, \"html\": {\"type\": \"text\"}}}"},
    {"follower",
     "{\"fields\": {\"target\": {\"type\": \"text\", \"required\": true, \"indexed\": true},"
     " \"user\": {\"type\": \"text\", \"required\": true, \"indexed\": true},"
     " \"key\": {\"type\": \"text\", \"unique\": true}}}"},
    {"notification",
     "{\"fields\": {\"owner\": {\"type\": \"text\", \"required\": true, \"indexed\": true},"
     " \"kind\": {\"type\": \"text\", \"required\": true},"
     " \"entity\": {\"type\": \"text\"}, \"record\": {\"type\": \"integer\"},"
     " \"interaction\": {\"type\": \"ref\", \"ref\": \"interaction\"},"
     " \"text\": {\"type\": \"text\"}, \"at\": {\"type\": \"datetime\", \"indexed\": true},"
     " \"read_at\": {\"type\": \"datetime\"}, \"emailed_at\": {\"type\": \"datetime\"}}}"},
};

/* What the plugin adds to other plugins' entities. */
static const struct {
    const char *entity, *field, *spec;
} added_fields[] = {
    {"attachment", "parts", "{\"type\": \"integer\", \"default\": 0}"},
    {"contact", "email_bouncing", "{\"type\": \"boolean\", \"default\": false}"},
    {"contact", "email_bounced_at", "{\"type\": \"datetime\"}"},
    {"contact", "sms_opt_out", "{\"type\": \"boolean\", \"default\": false}"},
    {"contact", "sms_opt_out_at", "{\"type\": \"datetime\"}"},
    {"contact", "social_handle", "{\"type\": \"text\", \"indexed\": true,"
                                " \"personal\": true}"},
    {"contact", "language", "{\"type\": \"text\"}"},
    {"interaction", "language", "{\"type\": \"text\"}"},
    {"campaign", "subject", "{\"type\": \"text\"}"},
    {"campaign", "body", "{\"type\": \"text\"}"},
    {"campaign", "html", "{\"type\": \"text\"}"},
    {"campaign", "template", "{\"type\": \"text\"}"},
    {"campaign", "send_cursor", "{\"type\": \"integer\", \"default\": 0}"},
    {"campaign", "send_status", "{\"type\": \"enum\", \"values\": [\"idle\", \"sending\","
                                " \"sent\"], \"default\": \"idle\"}"},
    {"campaign", "sent_count", "{\"type\": \"integer\", \"default\": 0}"},
    {"campaign", "skipped_count", "{\"type\": \"integer\", \"default\": 0}"},
    {"campaign", "failed_count", "{\"type\": \"integer\", \"default\": 0}"},
    {"campaign", "bounce_count", "{\"type\": \"integer\", \"default\": 0}"},
    {"campaign", "unsubscribe_count", "{\"type\": \"integer\", \"default\": 0}"},
};

/* Flags a newer version gained (a field marked personal) reach an installation made by an
 * older one through the store's declare, which applies only the safe changes: each entity the
 * plugin defines or adds to, with every field the plugin gives it. One the store refuses is
 * left as it was, which the plugin works with as before. */
static void redeclare(rapport_host *h, const char *entity, const char *text)
{
    json_t *spec = text ? json_loads(text, 0, NULL) : json_pack("{s:{}}", "fields");
    json_t *fields = json_object_get(spec, "fields");
    for (size_t i = 0; fields && i < sizeof added_fields / sizeof *added_fields; i++)
        if (strcmp(added_fields[i].entity, entity) == 0)
            json_object_set_new(fields, added_fields[i].field,
                                json_loads(added_fields[i].spec, 0, NULL));
    char *full = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    if (full && cm_api->declare(h, entity, full))
        cm_api->log(h, RAPPORT_LOG_WARN, "%s: its declared fields are not applied: %s", entity,
                    cm_api->last_error(h));
    free(full);
    json_decref(spec);
}

static void redeclare_all(rapport_host *h)
{
    if (!RAPPORT_HAS(cm_api, declare))
        return;
    for (size_t i = 0; i < sizeof entities / sizeof *entities; i++)
        redeclare(h, entities[i].name, entities[i].spec);
    for (size_t i = 0; i < sizeof added_fields / sizeof *added_fields; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(added_fields[j].entity, added_fields[i].entity) == 0;
        for (size_t j = 0; j < sizeof entities / sizeof *entities; j++)
            seen = seen || strcmp(entities[j].name, added_fields[i].entity) == 0;
        if (!seen)
            redeclare(h, added_fields[i].entity, NULL);
    }
}

static int ensure(rapport_host *h, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof entities / sizeof *entities; i++)
        if (!cm_api->has_entity(h, entities[i].name) &&
            cm_api->define_entity(h, entities[i].name, entities[i].spec))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: %s", entities[i].name,
                           cm_api->last_error(h));
    for (size_t i = 0; i < sizeof added_fields / sizeof *added_fields; i++) {
        if (cm_api->add_field(h, added_fields[i].entity, added_fields[i].field,
                              added_fields[i].spec) == 0)
            continue;
        const char *m = cm_api->last_error(h);
        if (!strstr(m, "already defined"))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s.%s: %s", added_fields[i].entity,
                           added_fields[i].field, m);
    }
    redeclare_all(h);
    return 0;
}

/* GLib and GObject (under GMime) cannot be unloaded: their type registry and one-time
 * allocations outlive any user. Unloading the plugin would unmap them with it, so they are
 * pinned in the process once it has loaded them (RTLD_NODELETE on what is loaded already). */
static void pin_glib(void)
{
    static const char *const libs[] = {"libgmime-3.0.so.0", "libgobject-2.0.so.0",
                                       "libglib-2.0.so.0", "libgio-2.0.so.0"};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        void *dl = dlopen(libs[i], RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        if (dl)
            dlclose(dl); /* the pin stays; the reference this call took goes */
    }
}

/* The portal's customer reads the interactions about them that are not staff's internal
 * notes (visibility public), and the links of exactly those ("through"), so their timeline
 * finds them and nothing betrays a note; operational offers the rest of the role. Their
 * bounce state is the mail's word, not theirs: cleared, the outbox would send again to an
 * address that bounces. Their social handle is who a social post is filed under (calls.c):
 * another's, taken, would file that one's posts and reviews under them. The language their
 * mail is written in is theirs to choose (the portal's menu saves it): added to the fields
 * operational lists as the customer's to write. */
static const char portal_role[] =
    "{\"principal\": \"contact\","
    " \"entities\": {\"contact\": {\"writable\": [\"language\"]},"
    "              \"interaction\": {\"read\": {\"link\": \"contact\","
    "                                      \"where\": {\"visibility\": \"public\"}}},"
    "              \"interaction_link\": {\"read\": {\"through\": \"interaction\"}}},"
    " \"fields\": {\"interaction.owner\": \"hidden\", \"interaction.author\": \"hidden\","
    "            \"interaction.campaign\": \"hidden\", \"interaction.error\": \"hidden\","
    "            \"contact.email_bouncing\": \"read_only\","
    "            \"contact.email_bounced_at\": \"read_only\","
    "            \"contact.social_handle\": \"read_only\"}}";

static int portal_init(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(cm_api, role_default))
        return 0;
    if (cm_api->role_default(h, "portal", portal_role))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the portal role: %s",
                       cm_api->last_error(h));
    return 0;
}

static int init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    cm_api = api;
    pin_glib();
    if (!RAPPORT_HAS(api, as_plugin))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "this engine (%s) lacks public routes and "
                       "record views, which collaborative needs", api->host_version);
    int rc = ensure(h, err, errlen);
    if (!rc)
        rc = cm_interactions_init(h, err, errlen);
    if (!rc)
        rc = cm_erase_init(h, err, errlen);
    if (!rc)
        rc = cm_timeline_init(h, err, errlen);
    if (!rc)
        rc = cm_mail_init(h, err, errlen);
    if (!rc)
        rc = cm_imap_init(h, err, errlen);
    if (!rc)
        rc = cm_channels_init(h, err, errlen);
    if (!rc)
        rc = cm_campaigns_init(h, err, errlen);
    if (!rc)
        rc = portal_init(h, err, errlen);
    if (!rc)
        rc = cm_thread_init(h, err, errlen);
    if (!rc)
        rc = cm_docs_init(h, err, errlen);
    return rc;
}

static const rapport_dep deps[] = {{"operational", "0.2.0"}, {NULL, NULL}};

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "collaborative",
    .version = "0.1.0",
    .description = "interactions on every channel (email, SMS, phone, social, notes) on one "
                   "timeline per record; followers, mentions, notifications; campaign sends",
    .requires = deps,
    .init = init,
    .fini = NULL,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
