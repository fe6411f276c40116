/*
 * service.c — tickets and their SLAs.
 *
 * A ticket gets its first-response and resolution deadlines when it opens, from the policy of
 * its priority; the deadlines move when the priority changes (counted from when the ticket
 * opened). A durable job per deadline, keyed by ticket and milestone, fires at the deadline;
 * it is moved with the deadline and cancelled once the milestone is met. With business hours
 * configured, the targets count only those hours, on the wall clock of their zone. A job that finds its
 * milestone unmet marks the ticket breached and appends ticket.sla_breached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "operational.h"

/* The policy a fresh install has: first response urgent 1 h, high 4 h, normal 8 h, low 24 h;
 * resolution four times those. */
static const char default_sla[] =
    "{\"urgent\": {\"first_response\": \"1h\", \"resolution\": \"4h\"},"
    " \"high\": {\"first_response\": \"4h\", \"resolution\": \"16h\"},"
    " \"normal\": {\"first_response\": \"8h\", \"resolution\": \"32h\"},"
    " \"low\": {\"first_response\": \"24h\", \"resolution\": \"96h\"}}";

static const char *const milestones[] = {"first_response", "resolution"};
/* The field a milestone is met by, and the field holding its deadline. */
static const char *const met_field[] = {"first_response_at", "resolved_at"};
static const char *const due_field[] = {"first_response_due", "resolution_due"};
static const char *const breach_field[] = {"first_response_breached", "resolution_breached"};

/* The targets of @p priority in milliseconds, from the setting or the default. */
static int targets(rapport_host *h, const char *priority, int64_t out[2], char *err,
                   size_t errlen)
{
    json_t *p = op_config(h, "sla");
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_loads(default_sla, 0, NULL);
    }
    json_t *pol = json_object_get(p, priority ? priority : "normal");
    int rc = 0;
    for (int m = 0; m < 2; m++) {
        const char *d = op_str(pol, milestones[m]);
        out[m] = d ? op_parse_delay(d) : -1;
        if (pol && d && out[m] < 0)
            rc = op_fail(err, errlen, "plugin.operational.sla: %s.%s: \"%s\" is not a delay "
                                      "(\"90s\", \"4h\", \"3d\")", priority, milestones[m], d);
    }
    json_decref(p);
    return rc;
}

/* ---- business hours ---------------------------------------------------------------------- */

/* plugin.operational.business_hours: {"days": [1..7 (Monday 1)], "start": "09:00",
 * "end": "17:00", "tz": "Europe/Berlin"}; SLA targets then count only those hours. */
typedef struct {
    bool on;
    bool day[8]; /* 1 = Monday … 7 = Sunday */
    int start, end; /* minutes after midnight */
    char tz[64];
} hours_t;

static bool parse_hhmm(const char *s, int *min)
{
    int h, m;
    if (!s || sscanf(s, "%d:%d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
        h * 60 + m > 24 * 60)
        return false;
    *min = h * 60 + m;
    return true;
}

static int business_hours(rapport_host *h, hours_t *bh, char *err, size_t errlen)
{
    memset(bh, 0, sizeof *bh);
    json_t *j = op_config(h, "business_hours");
    if (!j)
        return 0;
    int rc = 0;
    json_t *days = json_object_get(j, "days"), *d;
    size_t i;
    if (!json_is_object(j) || !parse_hhmm(op_str(j, "start"), &bh->start) ||
        !parse_hhmm(op_str(j, "end"), &bh->end) || bh->end <= bh->start) {
        rc = op_fail(err, errlen, "plugin.operational.business_hours: needs {\"start\": "
                                  "\"09:00\", \"end\": \"17:00\"} (end after start), with "
                                  "\"days\" (1 Monday … 7 Sunday) and \"tz\" if not Monday to "
                                  "Friday in UTC");
        goto out;
    }
    if (json_is_array(days)) {
        json_array_foreach(days, i, d) {
            json_int_t n = json_integer_value(d);
            if (n < 1 || n > 7) {
                rc = op_fail(err, errlen, "plugin.operational.business_hours.days: %s is not "
                                          "a day (1 Monday … 7 Sunday)",
                             json_is_integer(d) ? "a number out of 1..7" : "a non-number");
                goto out;
            }
            bh->day[n] = true;
        }
        if (json_array_size(days) == 0) {
            rc = op_fail(err, errlen, "plugin.operational.business_hours.days: no business day "
                                      "at all (1 Monday … 7 Sunday)");
            goto out;
        }
    } else {
        for (int k = 1; k <= 5; k++)
            bh->day[k] = true;
    }
    snprintf(bh->tz, sizeof bh->tz, "%s", op_str(j, "tz") ? op_str(j, "tz") : "UTC");
    char zone[128];
    snprintf(zone, sizeof zone, "/usr/share/zoneinfo/%s", bh->tz);
    if (strcmp(bh->tz, "UTC") != 0 && (strstr(bh->tz, "..") || access(zone, R_OK) != 0)) {
        rc = op_fail(err, errlen, "plugin.operational.business_hours.tz: no time zone \"%s\"",
                     bh->tz);
        goto out;
    }
    bh->on = true;
out:
    json_decref(j);
    return rc;
}

/* @p dur of business time after @p from, on the wall clock of the hours' zone (daylight saving
 * included). The engine runs plugins on one thread: TZ is switched for the call and put back,
 * as the core's cron does. */
static int64_t add_business(const hours_t *bh, int64_t from, int64_t dur)
{
    const char *was = getenv("TZ");
    char saved[128] = "";
    if (was)
        snprintf(saved, sizeof saved, "%s", was);
    setenv("TZ", bh->tz, 1);
    tzset();
    time_t t = (time_t)(from / 1000);
    int64_t left = dur / 1000, out = from;
    for (int guard = 0; guard < 3660; guard++) {
        struct tm lt;
        localtime_r(&t, &lt);
        int wd = lt.tm_wday == 0 ? 7 : lt.tm_wday, now = lt.tm_hour * 60 + lt.tm_min;
        struct tm open = lt, shut = lt;
        open.tm_hour = bh->start / 60, open.tm_min = bh->start % 60, open.tm_sec = 0;
        shut.tm_hour = bh->end / 60, shut.tm_min = bh->end % 60, shut.tm_sec = 0;
        open.tm_isdst = shut.tm_isdst = -1;
        if (!bh->day[wd] || now >= bh->end) {
            struct tm next = lt; /* the next day's opening */
            next.tm_mday++, next.tm_hour = bh->start / 60, next.tm_min = bh->start % 60;
            next.tm_sec = 0, next.tm_isdst = -1;
            t = mktime(&next);
            continue;
        }
        time_t a = now < bh->start ? mktime(&open) : t, b = mktime(&shut);
        if (left <= (int64_t)(b - a)) {
            out = ((int64_t)a + left) * 1000 + (a == t ? from % 1000 : 0);
            break;
        }
        left -= (int64_t)(b - a);
        t = b;
    }
    if (was)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    return out;
}

/* Before-hook on tickets. */
static int ticket_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    int64_t now = api->now_ms(h);
    char nowt[32];
    op_fmt_time(now, nowt);
    json_t *old = act == RAPPORT_UPDATE ? op_get(h, "ticket", api->change_id(c)) : NULL;
    json_t *prio = op_change_get(c, "priority"), *status = op_change_get(c, "status");
    const char *p = json_string_value(prio) ? json_string_value(prio) : "normal";
    const char *s = json_string_value(status) ? json_string_value(status) : "new";
    int rc = 0;
    /* The milestones, stamped when the status says they happened. */
    json_t *fr = op_change_get(c, "first_response_at"), *res = op_change_get(c, "resolved_at");
    if (strcmp(s, "new") != 0 && !json_is_string(fr))
        op_change_set(c, "first_response_at", json_string(nowt));
    if ((strcmp(s, "resolved") == 0 || strcmp(s, "closed") == 0) && !json_is_string(res))
        op_change_set(c, "resolved_at", json_string(nowt));
    else if (act == RAPPORT_UPDATE && strcmp(s, "resolved") != 0 && strcmp(s, "closed") != 0 &&
             json_is_string(json_object_get(old, "resolved_at")))
        op_change_set(c, "resolved_at", json_null()); /* reopened */
    /* The deadlines, from the opening time and the priority. */
    const char *oldp = op_str(old, "priority");
    if (act == RAPPORT_CREATE || !oldp || strcmp(oldp, p) != 0) {
        int64_t t[2];
        hours_t bh;
        if ((rc = targets(h, p, t, err, errlen)) || (rc = business_hours(h, &bh, err, errlen)))
            goto out;
        int64_t opened = act == RAPPORT_CREATE ? now : op_parse_time(op_str(old, "created_at"));
        for (int m = 0; m < 2; m++) {
            char due[32];
            if (t[m] < 0) {
                op_change_set(c, due_field[m], json_null());
                continue;
            }
            op_fmt_time(bh.on ? add_business(&bh, opened, t[m]) : opened + t[m], due);
            op_change_set(c, due_field[m], json_string(due));
        }
    }
out:
    json_decref(old);
    json_decref(prio);
    json_decref(status);
    json_decref(fr);
    json_decref(res);
    return rc;
}

/* Puts the deadline jobs of ticket @p id in step with the ticket: one pending job per unmet
 * milestone at its deadline, none for a met one. */
static int sync_jobs(rapport_host *h, int64_t id, char *err, size_t errlen)
{
    const rapport_api *api = op_api;
    json_t *t = op_get(h, "ticket", id);
    if (!t)
        return 0; /* purged: nothing to keep */
    int rc = 0;
    bool gone = json_is_string(json_object_get(t, "deleted_at"));
    for (int m = 0; m < 2 && !rc; m++) {
        char key[96];
        snprintf(key, sizeof key, "operational.sla:%lld:%s", (long long)id, milestones[m]);
        int64_t due = op_parse_time(op_str(t, due_field[m]));
        if (gone || json_is_string(json_object_get(t, met_field[m])) || due < 0 ||
            json_is_true(json_object_get(t, breach_field[m]))) {
            if (api->cancel(h, key) && !strstr(api->last_error(h), "no pending job"))
                rc = op_fail(err, errlen, "%s", api->last_error(h));
            continue;
        }
        int64_t delay = due - api->now_ms(h);
        char payload[128];
        snprintf(payload, sizeof payload, "{\"ticket\": %lld, \"milestone\": \"%s\"}",
                 (long long)id, milestones[m]);
        if (api->schedule(h, "operational.sla_due", payload, delay > 0 ? delay : 0, key))
            rc = op_fail(err, errlen, "%s", api->last_error(h));
    }
    json_decref(t);
    return rc;
}

/* After-handler on tickets: a new or changed ticket moves its deadline jobs. */
static int on_ticket(rapport_host *h, const rapport_api *api, const rapport_event *ev, void *ud,
                     char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    if (!ev->record_id || strcmp(ev->entity, "ticket") != 0)
        return 0;
    return sync_jobs(h, ev->record_id, err, errlen);
}

/* The job at a deadline: if the milestone is still unmet, the ticket breached its SLA. */
static int sla_due(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                   char *err, size_t errlen)
{
    (void)ud;
    json_t *p = json_loads(job->payload, 0, NULL);
    int64_t id = json_integer_value(json_object_get(p, "ticket"));
    const char *ms = op_str(p, "milestone");
    int m = ms && strcmp(ms, "resolution") == 0 ? 1 : 0;
    json_t *t = id ? op_get(h, "ticket", id) : NULL;
    int rc = 0;
    if (!t || json_is_string(json_object_get(t, "deleted_at")) ||
        json_is_string(json_object_get(t, met_field[m])) ||
        json_is_true(json_object_get(t, breach_field[m])))
        goto out; /* gone, met in time, or already told */
    int64_t due = op_parse_time(op_str(t, due_field[m]));
    if (due > api->now_ms(h)) {
        rc = sync_jobs(h, id, err, errlen); /* the deadline moved later: wait for it */
        goto out;
    }
    char patch[96];
    snprintf(patch, sizeof patch, "{\"sla_breached\": true, \"%s\": true}", breach_field[m]);
    if (api->update(h, "ticket", id, patch, 0)) {
        rc = op_fail(err, errlen, "%s", api->last_error(h));
        goto out;
    }
    json_t *ev = json_pack("{s:s,s:s?,s:s?,s:O?}", "milestone", milestones[m], "due",
                           op_str(t, due_field[m]), "priority", op_str(t, "priority"), "owner",
                           json_object_get(t, "owner"));
    char *et = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (api->emit(h, "ticket.sla_breached", "ticket", id, et))
        rc = op_fail(err, errlen, "%s", api->last_error(h));
    free(et);
out:
    json_decref(t);
    json_decref(p);
    return rc;
}

int op_service_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = op_api;
    if (api->hook(h, "ticket", RAPPORT_CREATE, 20, ticket_hook, NULL) ||
        api->hook(h, "ticket", RAPPORT_UPDATE, 20, ticket_hook, NULL) ||
        api->on(h, "sla", "ticket.*", on_ticket, NULL) ||
        api->job(h, "operational.sla_due", sla_due, NULL))
        return op_fail(err, errlen, "%s", api->last_error(h));
    return 0;
}
