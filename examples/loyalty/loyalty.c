/*
 * loyalty.c — an example vendor plugin: loyalty points. Members earn a point per whole currency
 * unit when an order is delivered, a deal is won or a loyalty_purchase is made; points expire a
 * configurable number of days after they were awarded; crm.loyalty.balance() and
 * `rapport loyalty top` read them. It sees the engine only through rapport_plugin.h: values
 * cross as JSON text, which this file writes with snprintf and reads with a small scanner.
 */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rapport_plugin.h"

#define DAY_MS 86400000LL
#define EXPIRE_DAYS_DEFAULT 365
#define SILVER_AT 500 /* points from which an account is silver */
#define GOLD_AT 2000  /* … and gold */
#define PAGE 100      /* awards expired per query */

/*
 * What the callbacks share, handed to each as its user data. The engine loads a plugin once per
 * process, so one instance serves every engine the process opens; init sets it afresh.
 */
typedef struct loyalty {
    char member[32]; /* the entity members are: "contact", or our own "loyalty_customer" */
} loyalty_t;

static loyalty_t state;

/* ---- reading JSON text: just enough to pick values out of what the engine returns -------- */

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The end of the JSON value that starts at @p p, or NULL when it is malformed. */
static const char *skip(const char *p)
{
    p = ws(p);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        return *p ? p + 1 : NULL;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                if (!(p = skip(p)))
                    return NULL;
                continue;
            }
            if (!*p)
                return NULL;
            depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
            p++;
        } while (depth > 0);
        return p;
    }
    const char *start = p;
    while (*p && !strchr(",:]} \t\r\n", *p))
        p++;
    return p > start ? p : NULL;
}

/* The value of key @p key in the JSON object at @p obj, or NULL when absent. */
static const char *get_key(const char *obj, const char *key)
{
    if (!obj || *(obj = ws(obj)) != '{')
        return NULL;
    size_t len = strlen(key);
    for (const char *p = ws(obj + 1); *p == '"';) {
        const char *end = skip(p);
        if (!end || *(end = ws(end)) != ':')
            return NULL;
        const char *v = ws(end + 1);
        /* Keys the engine writes are identifiers: no escapes to undo before comparing. */
        if (strncmp(p + 1, key, len) == 0 && p[len + 1] == '"')
            return v;
        if (!(p = skip(v)) || *(p = ws(p)) != ',')
            return NULL;
        p = ws(p + 1);
    }
    return NULL;
}

/* The first element of the JSON array at @p arr, or NULL when it is empty or no array. */
static const char *first(const char *arr)
{
    if (!arr || *(arr = ws(arr)) != '[')
        return NULL;
    const char *p = ws(arr + 1);
    return *p == ']' ? NULL : p;
}

/* The element after the one at @p el, or NULL after the last. */
static const char *next(const char *el)
{
    const char *p = skip(el);
    if (!p || *(p = ws(p)) != ',')
        return NULL;
    return ws(p + 1);
}

/* Whether @p v ends a JSON value: nothing but a delimiter may follow a number. */
static int ends(const char *v)
{
    v = ws(v);
    return *v == '\0' || *v == ',' || *v == ']' || *v == '}';
}

/* Reads the JSON integer at @p v into *out; -1 when it is not one. */
static int as_int(const char *v, int64_t *out)
{
    if (!v)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || errno || !ends(end))
        return -1;
    *out = n;
    return 0;
}

/*
 * Reads the decimal at @p v — a JSON number or a string such as "12.50", as decimal fields come
 * back — into its whole units (*units, truncated) and whether it is above zero. -1 when it is
 * no plain decimal (the store then says what is wrong with it).
 */
static int as_decimal(const char *v, int64_t *units, int *positive)
{
    if (!v)
        return -1;
    int quoted = *v == '"', neg = 0, nonzero_frac = 0;
    const char *p = v + quoted;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return -1;
    int64_t n = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            nonzero_frac |= *p != '0';
    if (quoted ? *p != '"' : !ends(p))
        return -1;
    *units = neg ? -n : n;
    *positive = !neg && (n > 0 || nonzero_frac);
    return 0;
}

/* Whether the JSON value at @p v is the string @p s (plain ASCII, as enum values are). */
static int is_string(const char *v, const char *s)
{
    size_t len = strlen(s);
    return v && v[0] == '"' && strncmp(v + 1, s, len) == 0 && v[len + 1] == '"';
}

/*
 * Copies the JSON string at @p v into @p out as UTF-8, undoing its escapes; "" if no string.
 * A string longer than @p cap is cut, at a character boundary.
 */
static void as_text(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    if (!v || *v != '"' || cap == 0) {
        if (cap)
            out[0] = '\0';
        return;
    }
    const char *p = v + 1;
    for (; *p && *p != '"' && n + 4 < cap; p++) {
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        unsigned long c = 0;
        switch (*++p) {
        case 'n':
            out[n++] = '\n';
            continue;
        case 't':
            out[n++] = '\t';
            continue;
        case 'r':
            out[n++] = '\r';
            continue;
        case 'b':
            out[n++] = '\b';
            continue;
        case 'f':
            out[n++] = '\f';
            continue;
        case 'u':
            if (sscanf(p + 1, "%4lx", &c) != 1)
                goto done;
            p += 4;
            /* A surrogate pair is one character written as two escapes. */
            unsigned long lo = 0;
            if (c >= 0xd800 && c < 0xdc00 && p[1] == '\\' && p[2] == 'u' &&
                sscanf(p + 3, "%4lx", &lo) == 1 && lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (c < 0x80) {
                out[n++] = (char)c;
            } else if (c < 0x800) {
                out[n++] = (char)(0xc0 | c >> 6);
                out[n++] = (char)(0x80 | (c & 0x3f));
            } else if (c < 0x10000) {
                out[n++] = (char)(0xe0 | c >> 12);
                out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (c & 0x3f));
            } else {
                out[n++] = (char)(0xf0 | c >> 18);
                out[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
                out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (c & 0x3f));
            }
            continue;
        case '\0':
            goto done;
        default:
            out[n++] = *p;
            continue; /* \" \\ \/ */
        }
    }
    /* Cut inside a character: drop its first bytes too, so the text stays valid UTF-8. */
    if (((unsigned char)*p & 0xc0) == 0x80) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--;
        n -= n > 0;
    }
done:
    out[n] = '\0';
}

/* ---- time and settings ------------------------------------------------------------------- */

/* Writes @p ms as the engine writes date-times: "YYYY-MM-DDTHH:MM:SS.sssZ". */
static void iso_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* plugin.loyalty.expire_days: a positive integer (or a string holding one), 365 when unset. */
static int expire_days(rapport_host *h, const rapport_api *api, int64_t *days, char *err,
                       size_t errlen)
{
    char *v = api->config(h, "expire_days");
    *days = EXPIRE_DAYS_DEFAULT;
    if (!v)
        return 0;
    /* `rapport config` may hold it as a number or as a string of digits. */
    int quoted = v[0] == '"';
    char *end;
    errno = 0;
    long long n = strtoll(v + quoted, &end, 10);
    int ok = end > v + quoted && !errno && (quoted ? strcmp(end, "\"") == 0 : ends(end));
    if (!ok || n <= 0 || n > 100000) {
        snprintf(err, errlen, "plugin.loyalty.expire_days must be a number of days above 0, got %s",
                 v);
        api->free(v);
        return RAPPORT_EINVAL;
    }
    api->free(v);
    *days = n;
    return 0;
}

static const char *tier_of(int64_t points)
{
    return points >= GOLD_AT ? "gold" : points >= SILVER_AT ? "silver" : "bronze";
}

/* ---- accounts and awards ----------------------------------------------------------------- */

/* Copies the engine's last message into @p err and passes @p rc on. */
static int failed(rapport_host *h, const rapport_api *api, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", api->last_error(h));
    return rc ? rc : RAPPORT_EIO;
}

/*
 * Finds the account of @p member: *id and *points, or *id = 0 when it has none — unless
 * @p create, which opens it then.
 */
static int account_of(rapport_host *h, const rapport_api *api, int64_t member, int create,
                      int64_t *id, int64_t *points)
{
    char q[160];
    snprintf(q, sizeof q,
             "{\"where\": {\"member\": %" PRId64 "}, \"limit\": 1, \"fields\": [\"id\", "
             "\"points\"]}",
             member);
    char *res = api->find(h, "loyalty_account", q);
    if (!res)
        return RAPPORT_EIO;
    const char *row = first(get_key(res, "data"));
    *id = *points = 0;
    int rc = 0;
    if (row && (as_int(get_key(row, "id"), id) || as_int(get_key(row, "points"), points)))
        rc = RAPPORT_EIO;
    api->free(res);
    if (rc || *id || !create)
        return rc;
    snprintf(q, sizeof q, "{\"member\": %" PRId64 ", \"points\": 0}", member);
    return api->create(h, "loyalty_account", q, id);
}

/* Sets an account's balance and the tier that goes with it, and says why in the event log. */
static int set_balance(rapport_host *h, const rapport_api *api, int64_t account, int64_t member,
                       int64_t balance, int64_t delta, const char *event, const char *source)
{
    char patch[96], payload[256];
    snprintf(patch, sizeof patch, "{\"points\": %" PRId64 ", \"tier\": \"%s\"}", balance,
             tier_of(balance));
    int rc = api->update(h, "loyalty_account", account, patch, 0);
    if (rc)
        return rc;
    snprintf(payload, sizeof payload,
             "{\"member\": %" PRId64 ", \"points\": %" PRId64 ", \"balance\": %" PRId64
             ", \"source\": \"%s\"}",
             member, delta, balance, source);
    return api->emit(h, event, "loyalty_account", account, payload);
}

/*
 * Awards @p points to @p member for @p source ("loyalty_purchase:7"), at most once per source:
 * a replayed event, or a deal won a second time, finds its award made and changes nothing.
 * @p at is when the points were earned (an event's time), from which they expire.
 */
static int award(rapport_host *h, const rapport_api *api, int64_t member, int64_t points,
                 const char *source, const char *at, char *err, size_t errlen)
{
    if (points <= 0)
        return 0;
    char q[256];
    int64_t done = 0, account = 0, balance = 0;
    snprintf(q, sizeof q, "{\"source\": \"%s\"}", source);
    int rc = api->count(h, "loyalty_award", q, &done);
    if (rc || done)
        return rc ? failed(h, api, rc, err, errlen) : 0;
    if ((rc = account_of(h, api, member, 1, &account, &balance)))
        return failed(h, api, rc, err, errlen);
    snprintf(q, sizeof q,
             "{\"account\": %" PRId64 ", \"points\": %" PRId64 ", \"awarded_at\": \"%s\", "
             "\"source\": \"%s\"}",
             account, points, at, source);
    if ((rc = api->create(h, "loyalty_award", q, NULL)) ||
        (rc = set_balance(h, api, account, member, balance + points, points, "loyalty.awarded",
                          source)))
        return failed(h, api, rc, err, errlen);
    return 0;
}

/* The member a sale is for: its field "member", else the one named after the member entity. */
static int64_t member_of(const loyalty_t *L, const char *record)
{
    int64_t v = 0;
    if (as_int(get_key(record, "member"), &v) == 0 || as_int(get_key(record, L->member), &v) == 0)
        return v;
    return 0;
}

/* ---- event handlers ---------------------------------------------------------------------- */

/* A loyalty_purchase earns a point per whole currency unit of its amount. */
static int on_purchase(rapport_host *h, const rapport_api *api, const rapport_event *ev, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    char *rec = api->get(h, "loyalty_purchase", ev->record_id);
    if (!rec) {
        /* Purged before we saw it: there is nothing left to award points for. */
        api->log(h, RAPPORT_LOG_WARN, "purchase %" PRId64 " is gone: %s", ev->record_id,
                 api->last_error(h));
        return 0;
    }
    int64_t member = 0, units = 0;
    int positive = 0;
    as_int(get_key(rec, "member"), &member);
    as_decimal(get_key(rec, "amount"), &units, &positive);
    api->free(rec);
    char source[64];
    snprintf(source, sizeof source, "loyalty_purchase:%" PRId64, ev->record_id);
    return member ? award(h, api, member, units, source, ev->at, err, errlen) : 0;
}

/*
 * An order delivered or a deal won earns a point per whole unit of its amount. Those entities
 * belong to other plugins, so the fields are looked for by their usual names: the member in
 * "member" or "contact", the amount in "amount", "total" or "value".
 */
static int on_sale(rapport_host *h, const rapport_api *api, const rapport_event *ev, void *ud,
                   char *err, size_t errlen)
{
    const loyalty_t *L = ud;
    const char *status = get_key(ev->changes, "status");
    const char *stage = get_key(ev->changes, "stage");
    const char *now_status = status ? next(first(status)) : NULL; /* [old, new] */
    const char *now_stage = stage ? next(first(stage)) : NULL;
    if (!(is_string(now_status, "won") || is_string(now_status, "delivered") ||
          is_string(now_stage, "won") || is_string(now_stage, "delivered")))
        return 0;
    char *rec = api->get(h, ev->entity, ev->record_id);
    if (!rec)
        return 0;
    int64_t member = member_of(L, rec), units = 0;
    int positive = 0;
    const char *amount = get_key(rec, "amount");
    if (!amount)
        amount = get_key(rec, "total");
    if (!amount)
        amount = get_key(rec, "value");
    as_decimal(amount, &units, &positive);
    api->free(rec);
    char source[96];
    snprintf(source, sizeof source, "%s:%" PRId64, ev->entity, ev->record_id);
    return member ? award(h, api, member, units, source, ev->at, err, errlen) : 0;
}

/* ---- the daily expiry -------------------------------------------------------------------- */

/* Expires one award: marks it and takes its points off the account (never below zero). */
static int expire_one(rapport_host *h, const rapport_api *api, const char *row)
{
    int64_t id = 0, account = 0, points = 0, member = 0, balance = 0;
    if (as_int(get_key(row, "id"), &id) || as_int(get_key(row, "account"), &account) ||
        as_int(get_key(row, "points"), &points))
        return RAPPORT_EIO;
    int rc = api->update(h, "loyalty_award", id, "{\"expired\": true}", 0);
    if (rc)
        return rc;
    char *acc = api->get(h, "loyalty_account", account);
    if (!acc)
        return RAPPORT_EIO;
    if (as_int(get_key(acc, "points"), &balance) || as_int(get_key(acc, "member"), &member))
        rc = RAPPORT_EIO;
    api->free(acc);
    if (rc)
        return rc;
    int64_t left = balance > points ? balance - points : 0;
    char source[64];
    snprintf(source, sizeof source, "loyalty_award:%" PRId64, id);
    return set_balance(h, api, account, member, left, -(balance - left), "loyalty.expired", source);
}

/* The job loyalty.expire: every award older than expire_days that has not expired yet. */
static int expire(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                  char *err, size_t errlen)
{
    (void)job;
    (void)ud;
    int64_t days = 0, n = 0;
    int rc = expire_days(h, api, &days, err, errlen);
    if (rc)
        return rc;
    char cutoff[32], q[256];
    iso_time(api->now_ms(h) - days * DAY_MS, cutoff);
    snprintf(q, sizeof q,
             "{\"where\": {\"expired\": false, \"awarded_at\": {\"lt\": \"%s\"}}, \"order\": "
             "\"id\", \"limit\": %d, \"fields\": [\"id\", \"account\", \"points\"]}",
             cutoff, PAGE);
    /* Each award expired leaves the filter, so the first page is always the next one. */
    for (int more = 1; more;) {
        char *res = api->find(h, "loyalty_award", q);
        if (!res)
            return failed(h, api, RAPPORT_EIO, err, errlen);
        more = 0;
        for (const char *row = first(get_key(res, "data")); row && !rc; row = next(row)) {
            rc = expire_one(h, api, row);
            more = 1;
            n++;
        }
        api->free(res);
        if (rc)
            return failed(h, api, rc, err, errlen);
    }
    if (n)
        api->log(h, RAPPORT_LOG_INFO, "expired %" PRId64 " award%s made before %s", n,
                 n == 1 ? "" : "s", cutoff);
    return 0;
}

/* ---- the before-hook, the Lua function and the command ----------------------------------- */

/* A purchase must be of a positive amount: a refund is not a way to buy points back. */
static int check_purchase(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                          char *err, size_t errlen)
{
    (void)h;
    (void)ud;
    for (int i = 0; i < api->change_count(c); i++) {
        char *amount = api->change_get(c, i, "amount");
        int64_t units = 0;
        int positive = 0;
        /* What is not a decimal at all is left to the store, which names the field and type. */
        int bad = amount && as_decimal(amount, &units, &positive) == 0 && !positive;
        if (bad)
            snprintf(err, errlen, "LOYALTY-E1: a purchase amount must be above zero, got %s",
                     amount);
        api->free(amount);
        if (bad)
            return RAPPORT_EVETO;
    }
    return 0;
}

/* crm.loyalty.balance(member_id): the member's points now (0 without an account). */
static int balance(rapport_host *h, const rapport_api *api, const char *args, char **result,
                   void *ud, char *err, size_t errlen)
{
    const loyalty_t *L = ud;
    const char *arg = first(args);
    int64_t member = 0, account = 0, points = 0;
    if (!arg || next(arg) || as_int(arg, &member) || member <= 0) {
        /* The engine prefixes "crm.loyalty.balance: " to the message. */
        snprintf(err, errlen, "needs one member id, got %s", args);
        return RAPPORT_EINVAL;
    }
    char *rec = api->get(h, L->member, member);
    if (!rec) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return RAPPORT_ENOTFOUND;
    }
    api->free(rec);
    int rc = account_of(h, api, member, 0, &account, &points);
    if (rc)
        return failed(h, api, rc, err, errlen);
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, points);
    *result = api->strdup(text);
    return *result ? 0 : RAPPORT_ENOMEM;
}

/* GET /api/v1/plugins/loyalty/balance/<member>: {"member", "points"}, as the caller (who must
 * be allowed to read that member). */
static int balance_route(rapport_host *h, const rapport_api *api, const rapport_request *req,
                         int *status, char **body, void *ud, char *err, size_t errlen)
{
    const loyalty_t *L = ud;
    int64_t member = 0, account = 0, points = 0;
    if (req->rest[0] != '/' || as_int(req->rest + 1, &member) || member <= 0) {
        snprintf(err, errlen, "the path is /api/v1/plugins/loyalty/balance/<member id>");
        return RAPPORT_ENOTFOUND;
    }
    char *rec = api->get(h, L->member, member);
    if (!rec) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return RAPPORT_ENOTFOUND;
    }
    api->free(rec);
    int rc = account_of(h, api, member, 0, &account, &points);
    if (rc) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return rc;
    }
    char text[96];
    snprintf(text, sizeof text, "{\"member\": %" PRId64 ", \"points\": %" PRId64 "}", member,
             points);
    *status = 200;
    *body = api->strdup(text);
    return *body ? 0 : RAPPORT_ENOMEM;
}

/* The member's name for the table: "name", else "first_name last_name", else "". */
static void member_name(rapport_host *h, const rapport_api *api, const loyalty_t *L, int64_t member,
                        char *out, size_t cap)
{
    char *rec = api->get(h, L->member, member);
    out[0] = '\0';
    if (!rec)
        return;
    as_text(get_key(rec, "name"), out, cap);
    if (!out[0]) {
        char first_name[128], last_name[128];
        as_text(get_key(rec, "first_name"), first_name, sizeof first_name);
        as_text(get_key(rec, "last_name"), last_name, sizeof last_name);
        snprintf(out, cap, "%s%s%s", first_name, first_name[0] && last_name[0] ? " " : "",
                 last_name);
    }
    api->free(rec);
}

/* Characters, not bytes, so a name with accents lines up. */
static int width(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static int max(int a, int b)
{
    return a > b ? a : b;
}

static int digits(int64_t v)
{
    char num[32];
    return snprintf(num, sizeof num, "%" PRId64, v);
}

typedef struct row {
    int64_t member, points;
    char tier[16];
    char name[96];
} row_t;

/* `rapport loyalty top [N]`: the N members with the most points, as a table. */
static int top(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    const loyalty_t *L = ud;
    long long n = 10;
    char *end = NULL;
    if (argc == 2)
        n = strtoll(argv[1], &end, 10);
    if (argc > 2 || (end && (end == argv[1] || *end)) || n < 1 || n > 1000) {
        fprintf(stderr, "usage: rapport loyalty top [N]   (N: how many members, 1 to 1000)\n");
        return 2;
    }
    char q[128];
    snprintf(q, sizeof q, "{\"order\": \"-points,id\", \"limit\": %lld}", n);
    char *res = api->find(h, "loyalty_account", q);
    if (!res) {
        fprintf(stderr, "rapport: %s\n", api->last_error(h));
        return 1;
    }
    row_t *rows = calloc((size_t)n, sizeof *rows);
    int count = 0;
    for (const char *r = first(get_key(res, "data")); r && rows && count < n; r = next(r)) {
        row_t *row = &rows[count++];
        as_int(get_key(r, "member"), &row->member);
        as_int(get_key(r, "points"), &row->points);
        as_text(get_key(r, "tier"), row->tier, sizeof row->tier);
        member_name(h, api, L, row->member, row->name, sizeof row->name);
    }
    api->free(res);
    if (!rows) {
        fprintf(stderr, "rapport: out of memory\n");
        return 1;
    }
    if (count == 0) {
        printf("no loyalty accounts yet\n");
        free(rows);
        return 0;
    }
    /* Column widths from the headings and the widest value of each column. */
    int wrank = 4, wmember = 6, wname = 4, wpoints = 6;
    for (int i = 0; i < count; i++) {
        wrank = max(wrank, digits(i + 1));
        wmember = max(wmember, digits(rows[i].member));
        wpoints = max(wpoints, digits(rows[i].points));
        wname = max(wname, width(rows[i].name));
    }
    printf("%*s  %*s  %-*s  %*s  %s\n", wrank, "RANK", wmember, "MEMBER", wname, "NAME", wpoints,
           "POINTS", "TIER");
    for (int i = 0; i < count; i++)
        printf("%*d  %*" PRId64 "  %s%*s  %*" PRId64 "  %s\n", wrank, i + 1, wmember,
               rows[i].member, rows[i].name, wname - width(rows[i].name), "", wpoints,
               rows[i].points, rows[i].tier);
    free(rows);
    return 0;
}

/* ---- the plugin -------------------------------------------------------------------------- */

/* Defines @p entity from @p spec unless the database has it from an earlier start. */
static int ensure(rapport_host *h, const rapport_api *api, const char *entity, const char *spec)
{
    return api->has_entity(h, entity) ? 0 : api->define_entity(h, entity, spec);
}

static int loyalty_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    loyalty_t *L = &state;
    /* Members are the CRM's contacts when there are any. Otherwise, and for as long as the
     * accounts were first made that way, our own loyalty_customer stands in for them. */
    int own = !api->has_entity(h, "contact") ||
              (api->has_entity(h, "loyalty_account") && api->has_entity(h, "loyalty_customer"));
    snprintf(L->member, sizeof L->member, "%s", own ? "loyalty_customer" : "contact");
    char spec[512];
    if (own && ensure(h, api, "loyalty_customer",
                      "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, "
                      "\"searchable\": true}, \"email\": {\"type\": \"email\", \"unique\": "
                      "true}}}"))
        goto fail;
    snprintf(spec, sizeof spec,
             "{\"fields\": {"
             "\"member\": {\"type\": \"ref\", \"ref\": \"%s\", \"required\": true, "
             "\"unique\": true}, "
             "\"points\": {\"type\": \"integer\", \"default\": 0, \"indexed\": true}, "
             "\"tier\": {\"type\": \"enum\", \"values\": [\"bronze\", \"silver\", \"gold\"], "
             "\"default\": \"bronze\"}}}",
             L->member);
    if (ensure(h, api, "loyalty_account", spec))
        goto fail;
    if (ensure(h, api, "loyalty_award",
               "{\"fields\": {"
               "\"account\": {\"type\": \"ref\", \"ref\": \"loyalty_account\", \"required\": "
               "true}, "
               "\"points\": {\"type\": \"integer\", \"required\": true}, "
               "\"awarded_at\": {\"type\": \"datetime\", \"required\": true, \"indexed\": "
               "true}, "
               "\"expired\": {\"type\": \"boolean\", \"default\": false}, "
               "\"source\": {\"type\": \"text\", \"unique\": true}}}"))
        goto fail;
    snprintf(spec, sizeof spec,
             "{\"fields\": {"
             "\"member\": {\"type\": \"ref\", \"ref\": \"%s\", \"required\": true}, "
             "\"amount\": {\"type\": \"decimal\", \"required\": true}}}",
             L->member);
    if (ensure(h, api, "loyalty_purchase", spec))
        goto fail;
    if (api->hook(h, "loyalty_purchase", RAPPORT_CREATE, 0, check_purchase, L) ||
        api->hook(h, "loyalty_purchase", RAPPORT_UPDATE, 0, check_purchase, L) ||
        api->on(h, "purchases", "loyalty_purchase.created", on_purchase, L) ||
        api->on(h, "orders", "order.updated", on_sale, L) ||
        api->on(h, "deals", "deal.updated", on_sale, L) ||
        api->job(h, "loyalty.expire", expire, L) ||
        api->every(h, "loyalty.expire", "0 3 * * *", NULL, "loyalty.expire", NULL) ||
        api->lua_function(h, "balance", balance, L) ||
        api->command(h, "top", "the members with the most points: top [N]", top, L))
        goto fail;
    /* An older engine without the HTTP API still runs the rest of the plugin. */
    if (RAPPORT_HAS(api, route) && api->route(h, "GET", "balance", balance_route, L))
        goto fail;
    /* A bad setting is said at start, not only when the nightly job trips on it. */
    int64_t days = 0;
    if (expire_days(h, api, &days, err, errlen))
        return RAPPORT_EINVAL;
    return 0;
fail:
    snprintf(err, errlen, "%s", api->last_error(h));
    return RAPPORT_EINVAL;
}

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "loyalty",
    .version = "1.0.0",
    .description = "loyalty points for purchases, won deals and delivered orders, expiring",
    .requires = NULL,
    .init = loyalty_init,
    .fini = NULL,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
