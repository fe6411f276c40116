/*
 * analytical.c — analytical CRM: who the valuable customers are, what they are worth, who is
 * slipping away. The plugin brings the purchase fact table (and the fields it stores on
 * contacts), and the analyses — RFM, historic and predictive CLV with BG/NBD, Pareto/NBD and
 * Gamma-Gamma, Pareto 80/20, churn risk, cohorts, the pipeline forecast — each as a command
 * (`rapport analytics …`), a Lua function (crm.analytical.*) and an HTTP route
 * (/api/v1/plugins/analytical/…), and refreshed on a schedule when one is set.
 *
 * Settings (rapport config set plugin.analytical.<key> VALUE):
 *   rfm_segments     the segment table (see rfm.c); the 11 widely used segments by default
 *   refresh_cron     a cron expression: refresh RFM, CLV and churn on it ("0 3 * * *")
 *   discount_rate    the annual rate of the time value of money (0.1)
 *   cost_per_ticket, cost_per_activity   the cost of serving a customer, per ticket, activity
 *   churn_p_alive    P(alive) below which a customer is at risk (0.5)
 *   churn_gap_factor a customer is at risk past this many of their own usual gaps (2)
 *   model            the purchase model of `clv` and churn: bgnbd (default) or paretonbd
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytical.h"

const rapport_api *an_api;

/* ---- helpers ------------------------------------------------------------------------------ */

int an_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RAPPORT_EINVAL;
}

json_t *an_json(char *text)
{
    if (!text)
        return NULL;
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    an_api->free(text);
    return j;
}

json_t *an_config(rapport_host *h, const char *key)
{
    return an_json(an_api->config(h, key));
}

double an_config_num(rapport_host *h, const char *key, double def)
{
    json_t *j = an_config(h, key);
    double v = json_is_number(j) ? json_number_value(j)
               : json_is_string(j) ? strtod(json_string_value(j), NULL)
                                   : def;
    json_decref(j);
    return v;
}

double an_num(json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *t = json_string_value(v);
    return t ? strtod(t, NULL) : 0;
}

int64_t an_time(const char *text)
{
    int64_t ms;
    if (!text || an_api->time_parse(NULL, text, &ms))
        return -1;
    return ms;
}

int64_t an_day(const char *label)
{
    int y, m, d;
    if (!label || sscanf(label, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 ||
        d > 31)
        return INT64_MIN;
    /* Howard Hinnant's days_from_civil. */
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

void an_time_fmt(int64_t ms, char *out)
{
    an_api->time_format(NULL, ms, out);
}

int64_t an_opt_time(json_t *opts, const char *key, int64_t def, char *err, size_t errlen)
{
    json_t *v = json_object_get(opts, key);
    if (!v || json_is_null(v))
        return def;
    int64_t ms = an_time(json_string_value(v));
    if (ms < 0)
        an_fail(err, errlen, "%s must be a date (YYYY-MM-DD) or an ISO-8601 date-time", key);
    return ms;
}

typedef struct {
    int (*fn)(json_t *row, void *ud);
    void *ud;
    int rc;
} agg_t;

static int agg_row(void *ud, const char *text)
{
    agg_t *a = ud;
    json_t *row = json_loads(text, 0, NULL);
    if (!row)
        return a->rc = RAPPORT_ENOMEM;
    a->rc = a->fn(row, a->ud);
    json_decref(row);
    return a->rc;
}

int an_aggregate(rapport_host *h, const char *entity, json_t *query,
                 int (*fn)(json_t *row, void *ud), void *ud, char *err, size_t errlen)
{
    char *q = json_dumps(query, JSON_COMPACT);
    if (!q)
        return an_fail(err, errlen, "out of memory");
    agg_t a = {fn, ud, 0};
    int rc = an_api->aggregate(h, entity, q, agg_row, &a);
    free(q);
    if (rc && rc == a.rc)
        return rc; /* the callback's own stop, with its message already in err */
    if (rc)
        an_fail(err, errlen, "%s", an_api->last_error(h));
    return rc;
}

typedef struct {
    int (*fn)(void *ud, int n, const rapport_cell *cells);
    void *ud;
    int rc;
} cells_t;

static int cells_row(void *ud, int n, const char *const *names, const rapport_cell *cells)
{
    (void)names;
    cells_t *a = ud;
    return a->rc = a->fn(a->ud, n, cells);
}

int an_aggregate_cells(rapport_host *h, const char *entity, json_t *query,
                       int (*fn)(void *ud, int n, const rapport_cell *cells), void *ud,
                       char *err, size_t errlen)
{
    char *q = json_dumps(query, JSON_COMPACT);
    if (!q)
        return an_fail(err, errlen, "out of memory");
    cells_t a = {fn, ud, 0};
    int rc = an_api->aggregate_cells(h, entity, q, cells_row, &a);
    free(q);
    if (rc && rc == a.rc)
        return rc;
    if (rc)
        an_fail(err, errlen, "%s", an_api->last_error(h));
    return rc;
}

double an_cell_num(const rapport_cell *c)
{
    switch (c->type) {
    case RAPPORT_CELL_INT:
        return (double)c->i;
    case RAPPORT_CELL_REAL:
        return c->d;
    case RAPPORT_CELL_DECIMAL:
        return (double)c->i / pow(10, c->scale);
    default:
        return 0;
    }
}

json_t *an_contacts(rapport_host *h, json_t *ids, json_t *fields, char *err, size_t errlen)
{
    json_t *q = json_pack("{s:{s:{s:o}},s:o,s:I}", "where", "id", "in", ids, "fields", fields,
                          "limit", (json_int_t)json_array_size(ids));
    char *qt = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    json_t *page = an_json(an_api->find(h, "contact", qt));
    free(qt);
    if (!page) {
        an_fail(err, errlen, "cannot read the contacts: %s", an_api->last_error(h));
        return NULL;
    }
    json_t *by_id = json_object();
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(page, "data"), k, v) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(v, "id")));
        json_object_set(by_id, key, v);
    }
    json_decref(page);
    return by_id;
}

/* ---- entities ----------------------------------------------------------------------------- */

static const char purchase_spec[] =
    "{\"fields\": {\"customer\": {\"type\": \"ref\", \"ref\": \"contact\", \"required\": true,"
    " \"indexed\": true}, \"at\": {\"type\": \"datetime\", \"required\": true, \"indexed\": true},"
    " \"amount\": {\"type\": \"decimal\", \"scale\": 2, \"required\": true},"
    " \"cost\": {\"type\": \"decimal\", \"scale\": 2}, \"ref\": {\"type\": \"text\","
    " \"indexed\": true}, \"source\": {\"type\": \"text\"}}}";

/* What the plugin adds to contacts: the key another system knows a customer by, the cost of
 * winning them, and what the analyses store. */
static const struct {
    const char *field, *spec;
} contact_fields[] = {
    {"external_id", "{\"type\": \"text\", \"unique\": true, \"indexed\": true}"},
    {"acquisition_cost", "{\"type\": \"decimal\", \"scale\": 2}"},
    {"last_purchase_at", "{\"type\": \"datetime\"}"},
    {"rfm_frequency", "{\"type\": \"integer\"}"},
    {"rfm_monetary", "{\"type\": \"decimal\", \"scale\": 2}"},
    {"rfm_score", "{\"type\": \"text\", \"indexed\": true}"},
    {"rfm_segment", "{\"type\": \"text\", \"indexed\": true}"},
    {"clv_historic", "{\"type\": \"decimal\", \"scale\": 2}"},
    {"clv_predicted", "{\"type\": \"decimal\", \"scale\": 2}"},
    {"expected_purchases", "{\"type\": \"real\"}"},
    {"p_alive", "{\"type\": \"real\"}"},
    {"churn_risk", "{\"type\": \"boolean\", \"default\": false, \"indexed\": true}"},
    {"analyzed_at", "{\"type\": \"datetime\"}"},
};

static int ensure(rapport_host *h, char *err, size_t errlen)
{
    if (!an_api->has_entity(h, "purchase") &&
        an_api->define_entity(h, "purchase", purchase_spec))
        return an_fail(err, errlen, "purchase: %s", an_api->last_error(h));
    for (size_t i = 0; i < sizeof contact_fields / sizeof *contact_fields; i++)
        if (an_api->add_field(h, "contact", contact_fields[i].field, contact_fields[i].spec) &&
            !strstr(an_api->last_error(h), "already defined"))
            return an_fail(err, errlen, "contact.%s: %s", contact_fields[i].field,
                           an_api->last_error(h));
    return 0;
}

/* The portal's customer reads what this plugin keeps on their contact and writes none of it:
 * it is the business's assessment (a segment picked by the customer would buy them its
 * treatment) and its key to another system (a customer who took another's external_id would
 * have that one's purchases filed under them by the next import). */
static int portal_fields(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(an_api, role_default))
        return 0;
    json_t *fields = json_object();
    for (size_t i = 0; fields && i < sizeof contact_fields / sizeof *contact_fields; i++) {
        char name[64];
        snprintf(name, sizeof name, "contact.%s", contact_fields[i].field);
        if (json_object_set_new(fields, name, json_string("read_only"))) {
            json_decref(fields);
            fields = NULL;
        }
    }
    json_t *role = fields ? json_pack("{s:s,s:o}", "principal", "contact", "fields", fields)
                          : NULL;
    char *text = role ? json_dumps(role, JSON_COMPACT) : NULL;
    json_decref(role);
    if (!text)
        return an_fail(err, errlen, "out of memory");
    int rc = an_api->role_default(h, "portal", text);
    free(text);
    return rc ? an_fail(err, errlen, "the portal role: %s", an_api->last_error(h)) : 0;
}

/* ---- the doors: a command line, Lua, HTTP, each into the same analysis -------------------- */

typedef int (*analysis_fn)(rapport_host *h, json_t *opts, json_t **out, char *err,
                           size_t errlen);

typedef struct {
    const char *name, *help;
    analysis_fn fn;
    const char *options; /* the option names it reads, comma-separated ("dry_run" is always
                            allowed: the HTTP route sets it) */
} analysis_t;

static const analysis_t analyses[] = {
    {"rfm", "RFM scores and segments, stored on contacts [--as-of DATE] [--dry-run] "
            "[--customers]", an_rfm, "as_of,customers"},
    {"fit", "fit bgnbd|paretonbd|gammagamma on a window: --model M [--calibration-end DATE] "
            "[--unit week|day]", an_fit, "model,calibration_end,unit"},
    {"clv", "historic and predicted CLV, P(alive), churn risk, stored on contacts [--horizon "
            "52w] [--rate 0.1] [--model bgnbd|paretonbd] [--as-of DATE] [--top N] [--dry-run]",
     an_clv, "as_of,horizon,rate,model,top"},
    {"churn", "the customers at risk (P(alive) under plugin.analytical.churn_p_alive, or "
              "silent past churn_gap_factor × their usual gap), stored, an event each", an_churn,
     "as_of,horizon,rate,model,top"},
    {"pareto", "the share of revenue from the top 20 % (--cut 10,20,50), the curve, its Gini, "
               "key customers [--top N] [--as-of DATE]", an_pareto, "as_of,cut,top,predicted"},
    {"cohorts", "customers by first purchase, retention per later period [--by month] "
                "[--revenue]", an_cohorts, "by,revenue,zone"},
    {"forecast", "open deals × stage probability by expected close month and owner, beside "
                 "what was won", an_forecast, ""},
};

/* Analysis @p a's route in the engine's OpenAPI document: its help as the summary, each option
 * it reads as a query parameter (the command line's --as-of is ?as_of=). */
static int route_doc(rapport_host *h, const rapport_api *api, const analysis_t *a)
{
    if (!RAPPORT_HAS(api, route_doc))
        return 0;
    json_t *params = json_array();
    for (const char *p = a->options; *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(params, json_pack("{s:s%,s:s,s:{s:s}}", "name", p, len, "in",
                                                "query", "schema", "type", "string"));
        p += len + (p[len] == ',');
    }
    json_array_append_new(params, json_pack("{s:s,s:s,s:{s:s},s:s}", "name", "dry_run", "in",
                                            "query", "schema", "type", "boolean", "description",
                                            "compute without storing"));
    json_t *op = json_pack("{s:s,s:o,s:{s:{s:s},s:{s:s}}}", "summary", a->help, "parameters",
                           params, "responses", "200", "description", "the analysis as JSON",
                           "422", "description", "an option it does not read, or a bad value");
    char *text = op ? json_dumps(op, JSON_COMPACT) : NULL;
    json_decref(op);
    int rc = text ? api->route_doc(h, "GET", a->name, text) : RAPPORT_ENOMEM;
    free(text);
    return rc;
}

/* Runs analysis @p a on @p opts after refusing an option it does not read, so a typo
 * (--asof, ?as-of=) is an error and not a default silently used. Every door comes here. */
static int run_analysis(rapport_host *h, const analysis_t *a, json_t *opts, json_t **out,
                        char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(opts, k, v) {
        size_t n = strlen(k);
        bool known = !strcmp(k, "dry_run");
        for (const char *p = a->options; !known && *p;) {
            size_t len = strcspn(p, ",");
            known = len == n && !strncmp(p, k, n);
            p += len + (p[len] == ',');
        }
        if (!known) {
            char list[160] = "";
            size_t n2 = 0;
            for (const char *p = a->options; *p && n2 + 3 < sizeof list; p++)
                n2 += (size_t)snprintf(list + n2, sizeof list - n2, *p == ',' ? ", " : "%c", *p);
            return an_fail(err, errlen, "%s has no option \"%s\" (its options: %s%sdry_run)",
                           a->name, k, list, *list ? ", " : "");
        }
    }
    return a->fn(h, opts, out, err, errlen);
}

/* @p j as JSON text from api->strdup (owned by the host's caller), or NULL; @p j is freed. */
static char *host_json(const rapport_api *api, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *out = text ? api->strdup(text) : NULL;
    free(text);
    return out;
}

/* "--as-of 2026-01-01" -> {"as_of": "2026-01-01"}; "--dry-run" -> {"dry_run": true}; the
 * output flags into @p o. */
static int parse_args(int argc, char **argv, json_t *opts, an_output_t *o, char *err,
                      size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return an_fail(err, errlen, "unexpected argument \"%s\" (options start with --)", a);
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(a, "--csv")) {
            o->csv = true;
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, "%s", a + 2);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        static const char *const flags[] = {"dry_run", "revenue", "predicted", "customers", NULL};
        bool flag = false;
        for (int k = 0; flags[k]; k++)
            flag |= strcmp(key, flags[k]) == 0;
        if (flag) {
            json_object_set_new(opts, key, json_true());
            continue;
        }
        if (i + 1 >= argc)
            return an_fail(err, errlen, "%s needs a value", a);
        if (!strcmp(a, "--svg")) {
            o->svg = argv[++i];
            continue;
        }
        json_object_set_new(opts, key, json_string(argv[++i]));
    }
    if (o->json && o->csv)
        return an_fail(err, errlen, "choose one of --json and --csv");
    return 0;
}

/* `rapport analytics NAME [options]`. */
static int analytics_cmd(rapport_host *h, const rapport_api *api, int argc, char **argv,
                         void *ud)
{
    (void)api;
    (void)ud;
    char err[512] = "";
    if (argc < 2) {
        fprintf(stderr, "usage: rapport analytics ANALYSIS [options] [--json|--csv] "
                        "[--svg FILE]\n");
        for (size_t i = 0; i < sizeof analyses / sizeof *analyses; i++)
            fprintf(stderr, "  %-9s %s\n", analyses[i].name, analyses[i].help);
        return 2;
    }
    for (size_t i = 0; i < sizeof analyses / sizeof *analyses; i++) {
        if (strcmp(argv[1], analyses[i].name) != 0)
            continue;
        json_t *opts = json_object(), *report = NULL;
        an_output_t o = {0};
        int skip = 2;
        /* `rapport analytics fit bgnbd`: the model may come first, without --model. */
        if (!strcmp(argv[1], "fit") && argc > 2 && strncmp(argv[2], "--", 2) != 0) {
            json_object_set_new(opts, "model", json_string(argv[2]));
            skip = 3;
        }
        int rc = parse_args(argc - skip, argv + skip, opts, &o, err, sizeof err);
        if (rc) {
            json_decref(opts);
            fprintf(stderr, "rapport analytics %s: %s\n", argv[1], err);
            return 2;
        }
        rc = run_analysis(h, &analyses[i], opts, &report, err, sizeof err);
        if (!rc)
            rc = an_print(report, &o, err, sizeof err);
        json_t *conv = json_object_get(report, "converged");
        if (!rc && json_is_false(conv)) {
            /* The figures are shown, and the exit status says they are not to be trusted. */
            fprintf(stderr, "rapport analytics %s: the fit did not converge: %s\n", argv[1],
                    json_string_value(json_object_get(report, "reason")));
            json_decref(opts);
            json_decref(report);
            return 1;
        }
        json_decref(opts);
        json_decref(report);
        if (rc) {
            fprintf(stderr, "rapport analytics %s: %s\n", argv[1], err);
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "rapport analytics: no analysis \"%s\" (run `rapport analytics` for the "
                    "list)\n", argv[1]);
    return 2;
}

/* crm.analytical.NAME(opts) -> the report. */
static int lua_analysis(rapport_host *h, const rapport_api *api, const char *args, char **result,
                        void *ud, char *err, size_t errlen)
{
    const analysis_t *an = ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *opts = json_array_get(a, 0);
    if (opts && !json_is_object(opts) && !json_is_null(opts)) {
        json_decref(a);
        return an_fail(err, errlen, "the options must be a table");
    }
    json_t *o = json_is_object(opts) ? json_incref(opts) : json_object();
    json_decref(a);
    json_t *report = NULL;
    int rc = run_analysis(h, an, o, &report, err, errlen);
    json_decref(o);
    if (rc)
        return rc;
    *result = host_json(api, report);
    return 0;
}

/* GET /api/v1/plugins/analytical/NAME?key=value…: the analysis, without storing anything. */
static int route_analysis(rapport_host *h, const rapport_api *api, const rapport_request *req,
                          int *status, char **body, void *ud, char *err, size_t errlen)
{
    const analysis_t *an = ud;
    if (req->rest[0] && strcmp(req->rest, "/") != 0)
        return RAPPORT_ENOTFOUND;
    json_t *opts = json_object();
    char *q = strdup(req->query ? req->query : "");
    int rc = q ? 0 : an_fail(err, errlen, "out of memory");
    for (char *save = NULL, *kv = q ? strtok_r(q, "&", &save) : NULL; kv && !rc;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = an_fail(err, errlen, "the parameter \"%.60s\" has no value (name=value)", kv);
            break;
        }
        *eq = '\0';
        /* Values are dates, numbers and names: undo %XX and '+'. The server has already refused
         * a malformed escape or text that is not UTF-8 (400); this holds for any caller. */
        char *v = eq + 1, *w = v;
        for (char *r = v; *r && !rc; r++) {
            if (*r == '%') {
                char hex[3] = {r[1], r[1] ? r[2] : 0, 0}, *end;
                long c = strtol(hex, &end, 16);
                if (!hex[0] || !hex[1] || *end || c == 0)
                    rc = an_fail(err, errlen, "the parameter %s holds a malformed %%-escape",
                                 kv);
                *w++ = (char)c;
                r += 2;
            } else {
                *w++ = *r == '+' ? ' ' : *r;
            }
        }
        *w = '\0';
        json_t *val = rc ? NULL : json_string(v);
        if (!rc && !val)
            rc = an_fail(err, errlen, "the parameter %s is not UTF-8 text", kv);
        if (!rc)
            json_object_set_new(opts, kv, val);
    }
    free(q);
    /* A GET reads: nothing is stored on the contacts from here. */
    json_object_set_new(opts, "dry_run", json_true());
    json_t *report = NULL;
    if (!rc)
        rc = run_analysis(h, an, opts, &report, err, errlen);
    json_decref(opts);
    if (rc)
        return rc;
    *body = host_json(api, report);
    *status = 200;
    return 0;
}

/* crm.analytical.segments() -> the RFM segment table in force. */
static int lua_segments(rapport_host *h, const rapport_api *api, const char *args, char **result,
                        void *ud, char *err, size_t errlen)
{
    (void)args;
    (void)ud;
    json_t *t = an_rfm_segments(h, err, errlen);
    if (!t)
        return RAPPORT_EINVAL;
    *result = host_json(api, t);
    return 0;
}

/* The job analytical.refresh: RFM, then CLV and churn, stored; scheduled by the setting
 * refresh_cron, or by a rule (crm.every(…, "analytical.refresh")). A failure is retried. */
static int refresh_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    (void)job;
    static const analysis_fn steps[] = {an_rfm, an_clv};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        json_t *opts = json_object(), *rep = NULL;
        int rc = steps[i](h, opts, &rep, err, errlen);
        if (!rc)
            api->log(h, RAPPORT_LOG_INFO, "refreshed %s: %lld contacts changed",
                     i ? "clv and churn" : "rfm",
                     (long long)json_integer_value(json_object_get(rep, "contacts_changed")));
        json_decref(opts);
        json_decref(rep);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the plugin --------------------------------------------------------------------------- */

static int init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    an_api = api;
    if (!RAPPORT_HAS(api, aggregate_cells))
        return an_fail(err, errlen, "this engine (%s) lacks grouped aggregates "
                                    "(rapport_api.aggregate), which analytical needs",
                       api->host_version);
    int rc = ensure(h, err, errlen);
    if (rc || (rc = portal_fields(h, err, errlen)))
        return rc;
    if ((rc = an_purchases_init(h, err, errlen)))
        return rc;
    if (api->command(h, "analytics", "analytical CRM: rfm, clv, fit, pareto, churn, cohorts, "
                                     "forecast (rapport analytics for the list)",
                     analytics_cmd, NULL))
        return an_fail(err, errlen, "%s", api->last_error(h));
    if (api->lua_function(h, "segments", lua_segments, NULL) ||
        api->job(h, "analytical.refresh", refresh_job, NULL))
        return an_fail(err, errlen, "%s", api->last_error(h));
    json_t *cron = an_config(h, "refresh_cron");
    if (json_is_string(cron) &&
        api->every(h, "analytical.refresh", json_string_value(cron), NULL, "analytical.refresh",
                   "{}")) {
        json_decref(cron);
        return an_fail(err, errlen, "plugin.analytical.refresh_cron: %s", api->last_error(h));
    }
    json_decref(cron);
    for (size_t i = 0; i < sizeof analyses / sizeof *analyses; i++) {
        void *a = (void *)&analyses[i];
        if (api->lua_function(h, analyses[i].name, lua_analysis, a) ||
            api->route(h, "GET", analyses[i].name, route_analysis, a) ||
            route_doc(h, api, &analyses[i]))
            return an_fail(err, errlen, "%s", api->last_error(h));
    }
    return 0;
}

static const rapport_dep deps[] = {{"operational", "0.2.0"}, {NULL, NULL}};

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "analytical",
    .version = "0.1.0",
    .description = "purchases; RFM, CLV (historic, BG/NBD, Pareto/NBD, Gamma-Gamma), Pareto "
                   "80/20, churn risk, cohorts, pipeline forecast",
    .requires = deps,
    .init = init,
    .fini = NULL,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
