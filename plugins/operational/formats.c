/*
 * formats.c — the file formats the front office brings to `rapport import` and `rapport
 * export`: vCard for people (vcard.c) and iCalendar for meetings (written by libical). The
 * engine knows neither; it finds them by name ("vcf", "ics") or by a file's ending.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libical/ical.h>

#include "operational.h"
#include "vcard.h"

/* Whether the JSON object @p fields (text) has every one of @p names. */
static bool has_fields(const char *fields, const char *const *names)
{
    json_t *f = json_loads(fields, 0, NULL);
    bool ok = f != NULL;
    for (int i = 0; ok && names[i]; i++)
        ok = json_object_get(f, names[i]) != NULL;
    json_decref(f);
    return ok;
}

/* ---- vCard ------------------------------------------------------------------------------ */

typedef struct {
    rapport_sink_fn sink;
    void *ud;
} cards_t;

static int one_card(void *ud, json_t *card, long line)
{
    cards_t *c = ud;
    char *text = json_dumps(card, JSON_COMPACT);
    int stop = text ? c->sink(c->ud, text, line) : 1;
    free(text);
    return stop;
}

static int vcf_read(rapport_host *h, const rapport_api *api, const char *entity,
                    const char *text, size_t len, rapport_sink_fn sink, void *sink_ud, void *ud,
                    char *err, size_t errlen)
{
    cards_t c = {sink, sink_ud};
    return op_vcard_parse(text, len, one_card, &c, err, errlen) ? RAPPORT_EINVAL : 0;
}

static int vcf_write(rapport_host *h, const rapport_api *api, rapport_export *x, char **out,
                     void *ud, char *err, size_t errlen)
{
    static const char *const person[] = {"last_name", NULL};
    if (x->phase == RAPPORT_EXPORT_BEGIN && !has_fields(x->fields, person))
        return op_fail(err, errlen, "vCard is for people: %s has no last_name field", x->entity);
    if (x->phase != RAPPORT_EXPORT_RECORD)
        return 0;
    json_t *r = json_loads(x->record, 0, NULL);
    size_t len = 0;
    FILE *f = r ? open_memstream(out, &len) : NULL;
    if (!f) {
        json_decref(r);
        return op_fail(err, errlen, "out of memory");
    }
    char uid[128];
    snprintf(uid, sizeof uid, "urn:rapport:%s:%lld", x->entity,
             (long long)json_integer_value(json_object_get(r, "id")));
    op_vcard_write(f, r, uid);
    fclose(f);
    json_decref(r);
    return 0;
}

/* ---- iCalendar -------------------------------------------------------------------------- */

/* "2026-01-01T10:00:00.000Z" -> "20260101T100000Z" */
static void ics_time(const char *iso, char out[20])
{
    snprintf(out, 20, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", iso, iso + 5, iso + 8, iso + 11, iso + 14,
             iso + 17);
}

/* One meeting as a VEVENT of @p cal; false when the record is left out. */
static bool add_event(icalcomponent *cal, const rapport_export *x, json_t *r, const char *stamp)
{
    const char *start = json_string_value(json_object_get(r, "due_at"));
    const char *kind = json_string_value(json_object_get(r, "kind"));
    if (!start || (kind && strcmp(kind, "meeting") != 0 && !x->filtered))
        return false; /* only what has a time; only meetings unless --where says */
    /* libical writes the text: escaped and folded as RFC 5545 says. */
    const char *end = json_string_value(json_object_get(r, "ends_at"));
    char ts[20], te[20], uid[128];
    ics_time(start, ts);
    icalcomponent *ev = icalcomponent_new_vevent();
    snprintf(uid, sizeof uid, "%s-%lld@rapport", x->entity,
             (long long)json_integer_value(json_object_get(r, "id")));
    icalcomponent_add_property(ev, icalproperty_new_uid(uid));
    icalcomponent_add_property(ev, icalproperty_new_dtstamp(icaltime_from_string(stamp)));
    icalcomponent_add_property(ev, icalproperty_new_dtstart(icaltime_from_string(ts)));
    if (end) {
        ics_time(end, te);
        icalcomponent_add_property(ev, icalproperty_new_dtend(icaltime_from_string(te)));
    }
    const char *subj = json_string_value(json_object_get(r, "subject"));
    icalcomponent_add_property(ev, icalproperty_new_summary(subj ? subj : ""));
    const char *loc = json_string_value(json_object_get(r, "location"));
    if (loc)
        icalcomponent_add_property(ev, icalproperty_new_location(loc));
    const char *desc = json_string_value(json_object_get(r, "description"));
    if (desc)
        icalcomponent_add_property(ev, icalproperty_new_description(desc));
    if (json_is_true(json_object_get(r, "done")))
        icalcomponent_add_property(ev, icalproperty_new_status(ICAL_STATUS_CONFIRMED));
    icalcomponent_add_component(cal, ev);
    return true;
}

static int ics_write(rapport_host *h, const rapport_api *api, rapport_export *x, char **out,
                     void *ud, char *err, size_t errlen)
{
    static const char *const meeting[] = {"subject", "due_at", NULL};
    icalcomponent *cal = x->state;
    if (x->phase == RAPPORT_EXPORT_BEGIN) {
        if (!has_fields(x->fields, meeting))
            return op_fail(err, errlen, "iCalendar is for meetings: %s has no subject and due_at "
                                        "fields", x->entity);
        cal = icalcomponent_new_vcalendar();
        icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
        icalcomponent_add_property(cal, icalproperty_new_prodid("-//Rapport//CRM//EN"));
        icalcomponent_add_property(cal, icalproperty_new_calscale("GREGORIAN"));
        x->state = cal;
        return 0;
    }
    if (x->phase == RAPPORT_EXPORT_RECORD) {
        char now[32], stamp[20];
        op_fmt_time(x->now_ms - x->now_ms % 1000, now);
        ics_time(now, stamp);
        json_t *r = json_loads(x->record, 0, NULL);
        /* The calendar is written whole at the end: "" counts the meeting meanwhile. */
        if (r && add_event(cal, x, r, stamp))
            *out = strdup("");
        json_decref(r);
        return 0;
    }
    if (!x->failed)
        *out = icalcomponent_as_ical_string_r(cal);
    icalcomponent_free(cal);
    /* libical keeps its zone table (read for the first UTC time) and scratch buffers in
     * globals; the engine may unload the plugin, and libical with it, so they go now. */
    icaltimezone_free_builtin_timezones();
    icalmemory_free_ring();
    x->state = NULL;
    return 0;
}

/* ---- registration ----------------------------------------------------------------------- */

int op_formats_init(rapport_host *h, char *err, size_t errlen)
{
    static const rapport_format vcf = {"vcf", ".vcf .vcard", "vCard 4.0 for people (2.1, 3.0 "
                                       "and 4.0 read)", vcf_read, vcf_write};
    static const rapport_format ics = {"ics", ".ics", "iCalendar for meetings (export)", NULL,
                                       ics_write};
    if (op_api->format(h, &vcf, NULL) || op_api->format(h, &ics, NULL))
        return op_fail(err, errlen, "%s", op_api->last_error(h));
    return 0;
}
