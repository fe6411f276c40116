/*
 * operational.c — the front office: accounts, contacts, leads and their conversion, deals in
 * pipelines, activities, tickets with SLAs, products, orders with lines, invoices with gap-free
 * numbers, campaigns and mailing lists with consent.
 *
 * The plugin defines its entities (and adds the fields a newer version brings to an older
 * database), and keeps their rules in before-hooks, so every door — the command line, Lua, an
 * import, the HTTP API — goes through them. The rules an admin changes (scoring, assignment,
 * escalation, follow-ups) are Lua, in scripts/ beside it (the engine's default rules); what
 * lives here is what a record must be to be stored at all.
 *
 * Settings (rapport config set plugin.operational.<key> VALUE):
 *   default_country  ISO code ("US", "IR", …) or calling code ("+98"): phones typed without
 *                    one get it, so "0912 345 6789" and "+98 912 345 6789" are one number
 *   pipelines        {"<name>": [{"name": s, "probability": 0..100, "kind": open|won|lost}, …]}
 *   sla              {"<priority>": {"first_response": "1h", "resolution": "4h"}, …}
 *   invoice_prefix   text before an invoice's number (default "INV-")
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "operational.h"

const rapport_api *op_api;

/* ---- entities ---------------------------------------------------------------------------- */

#define OWNER "\"owner\": {\"type\": \"text\", \"indexed\": true}"

/* Each entity with every field this version of the plugin knows; an older database gets the
 * fields it lacks added. Order matters: a ref needs its target first. */
static const struct {
    const char *name, *spec;
} entities[] = {
    {"account",
     "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true,"
     " \"indexed\": true}, \"domain\": {\"type\": \"text\", \"indexed\": true, \"searchable\": true},"
     " \"industry\": {\"type\": \"text\"}, \"phone\": {\"type\": \"phone\", \"indexed\": true},"
     " \"website\": {\"type\": \"url\"}, \"address\": {\"type\": \"text\"},"
     " \"city\": {\"type\": \"text\"}, \"country\": {\"type\": \"text\"},"
     " \"employees\": {\"type\": \"integer\"}, \"annual_revenue\": {\"type\": \"decimal\", \"scale\": 2},"
     " \"description\": {\"type\": \"text\"}, " OWNER "}}"},
    {"lead",
     "{\"fields\": {\"first_name\": {\"type\": \"text\", \"searchable\": true,"
     " \"personal\": true},"
     " \"last_name\": {\"type\": \"text\", \"required\": true, \"searchable\": true,"
     " \"personal\": true},"
     " \"email\": {\"type\": \"email\", \"indexed\": true, \"searchable\": true,"
     " \"personal\": true},"
     " \"phone\": {\"type\": \"phone\", \"indexed\": true, \"personal\": true},"
     " \"title\": {\"type\": \"text\"},"
     " \"company\": {\"type\": \"text\", \"searchable\": true},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"new\", \"contacted\", \"qualified\","
     " \"unqualified\", \"converted\"], \"default\": \"new\", \"indexed\": true},"
     " \"score\": {\"type\": \"integer\", \"default\": 0}, \"source\": {\"type\": \"text\"},"
     " \"description\": {\"type\": \"text\"}, \"converted_at\": {\"type\": \"datetime\"}, " OWNER
     "}}"},
    {"contact",
     "{\"fields\": {\"first_name\": {\"type\": \"text\", \"searchable\": true,"
     " \"personal\": true},"
     " \"last_name\": {\"type\": \"text\", \"required\": true, \"searchable\": true,"
     " \"personal\": true},"
     " \"email\": {\"type\": \"email\", \"indexed\": true, \"searchable\": true,"
     " \"personal\": true},"
     " \"phone\": {\"type\": \"phone\", \"indexed\": true, \"personal\": true},"
     " \"mobile\": {\"type\": \"phone\", \"personal\": true},"
     " \"title\": {\"type\": \"text\"}, \"account\": {\"type\": \"ref\", \"ref\": \"account\","
     " \"indexed\": true}, \"lead\": {\"type\": \"ref\", \"ref\": \"lead\"},"
     " \"source\": {\"type\": \"text\"}, \"birthday\": {\"type\": \"date\", \"personal\": true},"
     " \"address\": {\"type\": \"text\", \"personal\": true},"
     " \"city\": {\"type\": \"text\", \"personal\": true},"
     " \"country\": {\"type\": \"text\"},"
     " \"do_not_contact\": {\"type\": \"boolean\", \"default\": false},"
     " \"email_opt_out\": {\"type\": \"boolean\", \"default\": false}, " OWNER "}}"},
    {"deal",
     "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
     " \"amount\": {\"type\": \"decimal\", \"scale\": 2},"
     " \"currency\": {\"type\": \"text\", \"default\": \"USD\"},"
     " \"pipeline\": {\"type\": \"text\", \"default\": \"default\", \"indexed\": true},"
     " \"stage\": {\"type\": \"text\", \"indexed\": true},"
     " \"probability\": {\"type\": \"integer\"},"
     " \"account\": {\"type\": \"ref\", \"ref\": \"account\", \"indexed\": true},"
     " \"contact\": {\"type\": \"ref\", \"ref\": \"contact\", \"indexed\": true},"
     " \"expected_close\": {\"type\": \"date\"}, \"closed_at\": {\"type\": \"datetime\"},"
     " \"close_reason\": {\"type\": \"text\"}, \"stage_changed_at\": {\"type\": \"datetime\"},"
     " \"lead\": {\"type\": \"ref\", \"ref\": \"lead\"}, " OWNER "}}"},
    {"activity",
     "{\"fields\": {\"kind\": {\"type\": \"enum\", \"values\": [\"call\", \"meeting\", \"task\","
     " \"note\"], \"required\": true, \"indexed\": true},"
     " \"subject\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
     " \"due_at\": {\"type\": \"datetime\", \"indexed\": true}, \"ends_at\": {\"type\": \"datetime\"},"
     " \"done\": {\"type\": \"boolean\", \"default\": false},"
     " \"related_entity\": {\"type\": \"text\"}, \"related_id\": {\"type\": \"integer\","
     " \"indexed\": true}, \"location\": {\"type\": \"text\"},"
     " \"description\": {\"type\": \"text\"}, \"next_step\": {\"type\": \"text\"}, " OWNER "}}"},
    {"ticket",
     "{\"fields\": {\"subject\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
     " \"priority\": {\"type\": \"enum\", \"values\": [\"low\", \"normal\", \"high\", \"urgent\"],"
     " \"default\": \"normal\", \"indexed\": true},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"new\", \"open\", \"pending\", \"resolved\","
     " \"closed\"], \"default\": \"new\", \"indexed\": true},"
     " \"contact\": {\"type\": \"ref\", \"ref\": \"contact\", \"indexed\": true},"
     " \"account\": {\"type\": \"ref\", \"ref\": \"account\"},"
     " \"description\": {\"type\": \"text\", \"searchable\": true, \"personal\": true},"
     " \"first_response_at\": {\"type\": \"datetime\"}, \"resolved_at\": {\"type\": \"datetime\"},"
     " \"first_response_due\": {\"type\": \"datetime\"},"
     " \"resolution_due\": {\"type\": \"datetime\", \"indexed\": true},"
     " \"sla_breached\": {\"type\": \"boolean\", \"default\": false},"
     " \"first_response_breached\": {\"type\": \"boolean\", \"default\": false},"
     " \"resolution_breached\": {\"type\": \"boolean\", \"default\": false},"
     " \"escalated_to\": {\"type\": \"text\"}, " OWNER "}}"},
    {"product",
     "{\"fields\": {\"sku\": {\"type\": \"text\", \"required\": true, \"unique\": true},"
     " \"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
     " \"price\": {\"type\": \"decimal\", \"scale\": 2, \"required\": true},"
     " \"currency\": {\"type\": \"text\", \"default\": \"USD\"},"
     " \"active\": {\"type\": \"boolean\", \"default\": true},"
     " \"description\": {\"type\": \"text\"}}}"},
    {"order",
     "{\"fields\": {\"contact\": {\"type\": \"ref\", \"ref\": \"contact\", \"indexed\": true},"
     " \"account\": {\"type\": \"ref\", \"ref\": \"account\", \"indexed\": true},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"placed\", \"paid\", \"shipped\","
     " \"delivered\", \"cancelled\"], \"default\": \"placed\", \"indexed\": true},"
     " \"total\": {\"type\": \"decimal\", \"scale\": 2, \"default\": \"0.00\"},"
     " \"currency\": {\"type\": \"text\", \"default\": \"USD\"},"
     " \"placed_at\": {\"type\": \"datetime\"}, \"status_changed_at\": {\"type\": \"datetime\"},"
     " \"unusual\": {\"type\": \"boolean\", \"default\": false}, " OWNER "}}"},
    {"order_line",
     "{\"fields\": {\"order\": {\"type\": \"ref\", \"ref\": \"order\", \"required\": true,"
     " \"indexed\": true}, \"product\": {\"type\": \"ref\", \"ref\": \"product\"},"
     " \"description\": {\"type\": \"text\"},"
     " \"quantity\": {\"type\": \"decimal\", \"scale\": 3, \"default\": \"1.000\"},"
     " \"unit_price\": {\"type\": \"decimal\", \"scale\": 2},"
     " \"total\": {\"type\": \"decimal\", \"scale\": 2}}}"},
    {"invoice",
     "{\"fields\": {\"number\": {\"type\": \"text\", \"unique\": true},"
     " \"seq\": {\"type\": \"integer\", \"unique\": true},"
     " \"order\": {\"type\": \"ref\", \"ref\": \"order\", \"required\": true, \"indexed\": true},"
     " \"total\": {\"type\": \"decimal\", \"scale\": 2},"
     " \"currency\": {\"type\": \"text\", \"default\": \"USD\"},"
     " \"issued_at\": {\"type\": \"datetime\"},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"issued\", \"paid\", \"void\"],"
     " \"default\": \"issued\"}}}"},
    {"mailing_list",
     "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"unique\": true},"
     " \"description\": {\"type\": \"text\"}}}"},
    {"campaign",
     "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
     " \"kind\": {\"type\": \"enum\", \"values\": [\"email\", \"sms\", \"event\", \"webinar\","
     " \"ads\", \"other\"], \"default\": \"email\"},"
     " \"status\": {\"type\": \"enum\", \"values\": [\"planned\", \"active\", \"completed\","
     " \"cancelled\"], \"default\": \"planned\"},"
     " \"starts_at\": {\"type\": \"datetime\"}, \"ends_at\": {\"type\": \"datetime\"},"
     " \"budget\": {\"type\": \"decimal\", \"scale\": 2},"
     " \"list\": {\"type\": \"ref\", \"ref\": \"mailing_list\"}, " OWNER "}}"},
    {"list_member",
     "{\"fields\": {\"list\": {\"type\": \"ref\", \"ref\": \"mailing_list\", \"required\": true,"
     " \"indexed\": true}, \"contact\": {\"type\": \"ref\", \"ref\": \"contact\","
     " \"required\": true, \"indexed\": true},"
     " \"opted_in_at\": {\"type\": \"datetime\"}, \"source\": {\"type\": \"text\"},"
     " \"opted_out_at\": {\"type\": \"datetime\"}, \"opt_out_source\": {\"type\": \"text\"}}}"},
};

/* Fields added after an entity was first defined (refs to entities defined after it). */
static const struct {
    const char *entity, *field, *spec;
} late_fields[] = {
    {"lead", "converted_contact", "{\"type\": \"ref\", \"ref\": \"contact\"}"},
    {"lead", "converted_account", "{\"type\": \"ref\", \"ref\": \"account\"}"},
    {"lead", "converted_deal", "{\"type\": \"ref\", \"ref\": \"deal\"}"},
    {"deal", "campaign", "{\"type\": \"ref\", \"ref\": \"campaign\"}"},
    {"account", "merged_into", "{\"type\": \"ref\", \"ref\": \"account\"}"},
    {"contact", "merged_into", "{\"type\": \"ref\", \"ref\": \"contact\"}"},
    {"lead", "merged_into", "{\"type\": \"ref\", \"ref\": \"lead\"}"},
    {"lead", "campaign", "{\"type\": \"ref\", \"ref\": \"campaign\"}"},
    /* Tracking, which the customer portal shows with an order's status history. */
    {"order", "carrier", "{\"type\": \"text\"}"},
    {"order", "tracking_number", "{\"type\": \"text\", \"indexed\": true}"},
    {"order", "tracking_url", "{\"type\": \"url\"}"},
};

/* Adds @p field unless it is there. */
static int ensure_field(rapport_host *h, const char *entity, const char *field, const char *spec,
                        char *err, size_t errlen)
{
    if (op_api->add_field(h, entity, field, spec) == 0)
        return 0;
    const char *m = op_api->last_error(h);
    if (strstr(m, "already defined"))
        return 0;
    snprintf(err, errlen, "%s.%s: %s", entity, field, m);
    return RAPPORT_EINVAL;
}

/* Flags a newer version gained (a field marked personal) reach an installation made by an
 * older one through the store's declare, which applies only the safe changes. The spec is the
 * entity's with its late fields, so none of them looks dropped; a change the store refuses
 * leaves the entity as it was, which the plugin works with as before. */
static void redeclare(rapport_host *h, const char *entity, const char *text)
{
    if (!RAPPORT_HAS(op_api, declare))
        return;
    json_t *spec = json_loads(text, 0, NULL);
    json_t *fields = json_object_get(spec, "fields");
    for (size_t i = 0; fields && i < sizeof late_fields / sizeof *late_fields; i++)
        if (strcmp(late_fields[i].entity, entity) == 0)
            json_object_set_new(fields, late_fields[i].field,
                                json_loads(late_fields[i].spec, 0, NULL));
    char *full = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    if (full && op_api->declare(h, entity, full))
        op_api->log(h, RAPPORT_LOG_WARN, "%s: its declared fields are not applied: %s", entity,
                    op_api->last_error(h));
    free(full);
    json_decref(spec);
}

static int ensure_entities(rapport_host *h, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof entities / sizeof *entities; i++) {
        const char *e = entities[i].name;
        if (!op_api->has_entity(h, e)) {
            if (op_api->define_entity(h, e, entities[i].spec)) {
                snprintf(err, errlen, "%s: %s", e, op_api->last_error(h));
                return RAPPORT_EINVAL;
            }
            continue;
        }
        /* Defined before (by an older version, or by an admin): add what is missing. */
        json_t *spec = json_loads(entities[i].spec, 0, NULL);
        json_t *fields = json_object_get(spec, "fields"), *v;
        const char *k;
        int rc = 0;
        json_object_foreach(fields, k, v) {
            char *t = json_dumps(v, JSON_COMPACT);
            rc = ensure_field(h, e, k, t, err, errlen);
            free(t);
            if (rc)
                break;
        }
        json_decref(spec);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < sizeof late_fields / sizeof *late_fields; i++)
        if (ensure_field(h, late_fields[i].entity, late_fields[i].field, late_fields[i].spec, err,
                         errlen))
            return RAPPORT_EINVAL;
    for (size_t i = 0; i < sizeof entities / sizeof *entities; i++)
        redeclare(h, entities[i].name, entities[i].spec);
    return 0;
}

/* ---- small helpers shared by the files of the plugin ------------------------------------- */

json_t *op_json(char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    op_api->free(text);
    return j;
}

json_t *op_get(rapport_host *h, const char *entity, int64_t id)
{
    return op_json(op_api->get(h, entity, id));
}

json_t *op_change_get_i(rapport_change *c, int i, const char *field)
{
    return op_json(op_api->change_get(c, i, field));
}

json_t *op_change_get(rapport_change *c, const char *field)
{
    return op_change_get_i(c, 0, field);
}

const char *op_str(json_t *obj, const char *field)
{
    return json_string_value(json_object_get(obj, field));
}

int op_change_set_i(rapport_change *c, int i, const char *field, json_t *v)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(v);
    int rc = t ? op_api->change_set(c, i, field, t) : RAPPORT_ENOMEM;
    free(t);
    return rc;
}

int op_change_set(rapport_change *c, const char *field, json_t *v)
{
    return op_change_set_i(c, 0, field, v);
}

json_t *op_config(rapport_host *h, const char *key)
{
    return op_json(op_api->config(h, key));
}

int op_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RAPPORT_EINVAL;
}

/* Time and decimals: the engine's own codecs (rapport_api), so the plugin reads and writes
 * exactly what the store does. */
void op_fmt_time(int64_t ms, char out[32])
{
    if (op_api->time_format(NULL, ms, out))
        out[0] = '\0';
}

int64_t op_parse_time(const char *s)
{
    int64_t ms;
    return s && op_api->time_parse(NULL, s, &ms) == 0 ? ms : -1;
}

int64_t op_parse_delay(const char *s)
{
    int64_t ms;
    return s && op_api->delay_parse(NULL, s, &ms) == 0 ? ms : -1;
}

bool op_dec_parse(const char *s, int scale, int64_t *out)
{
    return s && op_api->dec_parse(NULL, s, scale, out) == 0;
}

json_t *op_dec_json(int64_t v, int scale)
{
    char buf[RAPPORT_DEC_LEN];
    return op_api->dec_format(NULL, v, scale, buf, sizeof buf) ? NULL : json_string(buf);
}

/* ---- normalising emails and phones ------------------------------------------------------- */

/* ISO 3166 codes of the countries people here call from, and their calling codes. */
static const struct {
    const char *iso, *code;
} countries[] = {
    {"US", "1"},  {"CA", "1"},   {"GB", "44"},  {"DE", "49"},  {"FR", "33"},  {"IR", "98"},
    {"IN", "91"}, {"AE", "971"}, {"SA", "966"}, {"NL", "31"},  {"ES", "34"},  {"IT", "39"},
    {"AU", "61"}, {"TR", "90"},  {"BR", "55"},  {"JP", "81"},  {"CN", "86"},  {"SE", "46"},
    {"CH", "41"}, {"AT", "43"},  {"BE", "32"},  {"IE", "353"}, {"PL", "48"},  {"PT", "351"},
    {"MX", "52"}, {"AF", "93"},  {"TJ", "992"}, {"IQ", "964"}, {"PK", "92"},  {"EG", "20"},
    {"RU", "7"},  {"KR", "82"},  {"NO", "47"},  {"DK", "45"},  {"FI", "358"}, {"NZ", "64"},
};

/* The calling code of the configured default country ("98"), or "" when none is set. */
void op_default_cc(rapport_host *h, char cc[8])
{
    cc[0] = '\0';
    json_t *j = op_config(h, "default_country");
    const char *v = json_string_value(j);
    if (v && v[0] == '+') {
        size_t n = strspn(v + 1, "0123456789");
        if (n >= 1 && n <= 4 && !v[1 + n])
            snprintf(cc, 8, "%s", v + 1);
    } else if (v) {
        for (size_t i = 0; i < sizeof countries / sizeof *countries; i++)
            if (strcasecmp(v, countries[i].iso) == 0)
                snprintf(cc, 8, "%s", countries[i].code);
        if (!cc[0])
            op_api->log(h, RAPPORT_LOG_WARN,
                        "plugin.operational.default_country \"%s\" is not a country code this "
                        "plugin knows: give its calling code instead (\"+98\")", v);
    }
    json_decref(j);
}

int op_norm_phone(const char *in, const char *cc, char *out, size_t cap, char *why, size_t wlen)
{
    char digits[40];
    size_t n = 0;
    bool plus = false, any = false;
    const unsigned char *p = (const unsigned char *)in;
    for (; *p; p++) {
        int d = -1;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (p[0] == 0xDB && p[1] >= 0xB0 && p[1] <= 0xB9) /* Persian digits */
            d = p[1] - 0xB0, p++;
        else if (p[0] == 0xD9 && p[1] >= 0xA0 && p[1] <= 0xA9) /* Arabic-Indic digits */
            d = p[1] - 0xA0, p++;
        else if (*p == '+' && !any && !plus) {
            plus = true;
            continue;
        } else if (strchr(" -.()/\t", *p)) {
            continue;
        } else if (*p == 'x' || *p == '#' || strncmp((const char *)p, "ext", 3) == 0) {
            break; /* an extension: the number is what came before it */
        } else {
            if (*p < 0x20)
                snprintf(why, wlen, "\"%s\" is not a phone number (it holds a control "
                                    "character, 0x%02x)", in, *p);
            else
                snprintf(why, wlen, "\"%s\" is not a phone number (it holds '%c')", in, *p);
            return -1;
        }
        any = true;
        if (n + 1 >= sizeof digits) {
            snprintf(why, wlen, "\"%s\" has too many digits for a phone number", in);
            return -1;
        }
        digits[n++] = (char)('0' + d);
    }
    digits[n] = '\0';
    const char *d = digits;
    if (!plus && strncmp(d, "00", 2) == 0) { /* the international prefix */
        plus = true;
        d += 2;
    }
    if (plus) {
        snprintf(out, cap, "+%s", d);
    } else if (cc && *cc) {
        if (*d == '0')
            d++; /* the national trunk prefix */
        snprintf(out, cap, "+%s%s", cc, d);
    } else {
        snprintf(out, cap, "%s", d);
    }
    size_t total = strspn(out + (out[0] == '+'), "0123456789");
    if (total < 4 || total > 15) {
        snprintf(why, wlen, "\"%s\" is not a phone number (%zu digits; 4 to 15 expected)", in,
                 total);
        return -1;
    }
    return 0;
}

/* Record @p r's field as text: in @p small (@p cap bytes) when it fits, else in memory of its
 * own (free it when it is not @p small); NULL when absent or not text, *len then says which
 * (RAPPORT_ENOMEM when memory ran out). */
static char *text_at(const rapport_api *api, rapport_change *c, int r, const char *field,
                     char *small, size_t cap, long *len)
{
    *len = api->change_get_text(c, r, field, small, cap);
    if (*len < (long)cap)
        return *len >= 0 ? small : NULL;
    char *big = malloc((size_t)*len + 1);
    if (big && api->change_get_text(c, r, field, big, (size_t)*len + 1) == *len)
        return big;
    free(big);
    *len = RAPPORT_ENOMEM;
    return NULL;
}

/* Batch before-hook on accounts, contacts and leads: one form for emails, phones and domains,
 * so lookups and duplicate checks match whatever was typed. A batch hook, so an import of a
 * million reads the default country once per batch, not once per row; the fields are read
 * and written as text, without a JSON round trip a field. */
static int normalise(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                     char *err, size_t errlen)
{
    (void)ud;
    static const char *const fields[] = {"phone", "mobile", "email", "domain", NULL};
    char cc[8] = "";
    bool cc_read = false;
    const char *entity = api->change_entity(c);
    int n = api->change_count(c);
    for (int r = 0; r < n; r++) {
        for (int i = 0; fields[i]; i++) {
            char small[256];
            long len;
            char *v = text_at(api, c, r, fields[i], small, sizeof small, &len);
            if (!v) {
                if (len == RAPPORT_ENOMEM)
                    return op_fail(err, errlen, "%s.%s: out of memory", entity, fields[i]);
                continue; /* absent or not text: the store's own check says which */
            }
            int rc = 0;
            if (i < 2 && *v) { /* a phone */
                if (!cc_read) {
                    op_default_cc(h, cc);
                    cc_read = true;
                }
                char out[48], why[160];
                if (op_norm_phone(v, cc, out, sizeof out, why, sizeof why)) {
                    api->change_refuse(c, r);
                    rc = op_fail(err, errlen, "%s.%s: %s", entity, fields[i], why);
                } else if (strcmp(out, v) != 0) {
                    api->change_set_text(c, r, fields[i], out);
                }
            } else if (i >= 2) { /* trimmed of spaces, in lower case */
                char *t = v;
                while (*t == ' ')
                    t++;
                size_t tl = strlen(t);
                while (tl && t[tl - 1] == ' ')
                    tl--;
                bool changed = t != v || tl != (size_t)len;
                t[tl] = '\0';
                for (char *q = t; *q; q++)
                    if (*q >= 'A' && *q <= 'Z') {
                        *q = (char)(*q - 'A' + 'a');
                        changed = true;
                    }
                if (changed)
                    api->change_set_text(c, r, fields[i], t);
            }
            if (v != small)
                free(v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- the portal's role ------------------------------------------------------------------- */

/* What a customer signed in to the portal reaches, as the contact they are: their own contact
 * and account, their orders with lines and invoices, their tickets (opened for themselves).
 * The fields that make links are read-only, so a customer cannot move into another account
 * or hand a ticket to someone else; staff's fields are hidden. What they write is listed
 * ("writable": what the portal's account page and its new-ticket form send), so a field added
 * later (by a plugin, by an administrator) is theirs to read, not to change. A ticket's
 * contact is listed as they may name themselves (the link refuses anyone else). Offered, not
 * imposed: an administrator's own grants in roles.portal stay (api->role_default). */
static const char portal_role[] =
    "{\"principal\": \"contact\","
    " \"entities\": {"
    "  \"contact\": {\"read\": \"self\", \"update\": \"self\","
    "               \"writable\": [\"first_name\", \"last_name\", \"phone\", \"mobile\","
    "                             \"address\", \"city\", \"country\"]},"
    "  \"account\": {\"read\": {\"link\": \"self.account\"}},"
    "  \"order\": {\"read\": {\"link\": \"contact\"}},"
    "  \"order_line\": {\"read\": {\"link\": \"order.contact\"}},"
    "  \"invoice\": {\"read\": {\"link\": \"order.contact\"}},"
    "  \"ticket\": {\"read\": {\"link\": \"contact\"}, \"create\": true,"
    "             \"update\": {\"link\": \"contact\"},"
    "             \"writable\": [\"subject\", \"description\", \"contact\"]}},"
    " \"fields\": {"
    "  \"contact.account\": \"read_only\", \"contact.lead\": \"hidden\","
    "  \"contact.merged_into\": \"read_only\", \"contact.owner\": \"hidden\","
    "  \"contact.source\": \"read_only\", \"contact.do_not_contact\": \"read_only\","
    "  \"account.owner\": \"hidden\", \"account.merged_into\": \"hidden\","
    "  \"order.owner\": \"hidden\", \"order.unusual\": \"hidden\","
    "  \"ticket.account\": \"read_only\","
    "  \"ticket.owner\": \"hidden\", \"ticket.escalated_to\": \"hidden\","
    "  \"ticket.priority\": \"read_only\", \"ticket.first_response_at\": \"read_only\","
    "  \"ticket.resolved_at\": \"read_only\", \"ticket.first_response_due\": \"read_only\","
    "  \"ticket.resolution_due\": \"read_only\", \"ticket.sla_breached\": \"read_only\","
    "  \"ticket.first_response_breached\": \"read_only\","
    "  \"ticket.resolution_breached\": \"read_only\"}}";

static int portal_init(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(op_api, role_default))
        return 0; /* an older engine: no record principals, so no portal role to offer */
    if (op_api->role_default(h, "portal", portal_role))
        return op_fail(err, errlen, "the portal role: %s", op_api->last_error(h));
    return 0;
}

/* ---- the plugin -------------------------------------------------------------------------- */

static int init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    op_api = api;
    if (!RAPPORT_HAS(api, change_refuse))
        return op_fail(err, errlen, "this engine (%s) lacks what operational needs "
                                    "(transactions, schema, fold): it needs 0.2.0 or newer",
                       api->host_version);
    if (!RAPPORT_HAS(api, format))
        return op_fail(err, errlen, "this engine (%s) lacks the time, decimal and file format "
                                    "functions operational uses (rapport_api.format)",
                       api->host_version);
    int rc = ensure_entities(h, err, errlen);
    if (rc)
        return rc;
    static const char *const people[] = {"account", "contact", "lead"};
    for (int i = 0; i < 3; i++)
        for (int act = RAPPORT_CREATE; act <= RAPPORT_UPDATE; act++)
            if ((rc = api->batch_hook(h, people[i], act, 10, normalise, NULL)))
                return op_fail(err, errlen, "%s", api->last_error(h));
    if ((rc = op_sales_init(h, err, errlen)) || (rc = op_service_init(h, err, errlen)) ||
        (rc = op_orders_init(h, err, errlen)) || (rc = op_people_init(h, err, errlen)) ||
        (rc = op_demo_init(h, err, errlen)) || (rc = op_formats_init(h, err, errlen)) ||
        (rc = portal_init(h, err, errlen)))
        return rc;
    return 0;
}

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "operational",
    .version = "0.2.0",
    .description = "accounts, contacts, leads, deals and pipelines, activities, tickets with SLAs, "
                   "products, orders, invoices, campaigns and consent",
    .requires = NULL,
    .init = init,
    .fini = NULL,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
