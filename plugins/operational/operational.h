/*
 * operational.h — what the files of the operational plugin share.
 */
#ifndef OPERATIONAL_H
#define OPERATIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport_plugin.h"

/** The engine's table, set by init (one engine table serves every host of the process). */
extern const rapport_api *op_api;

/** Parses JSON text the host returned, and frees the text. NULL for NULL or bad text. */
json_t *op_json(char *text);
/** A record (owned), or NULL (see op_api->last_error). */
json_t *op_get(rapport_host *h, const char *entity, int64_t id);
/** The value of @p field in the change (owned; on update, the old value when not patched). */
json_t *op_change_get(rapport_change *c, const char *field);
/** Sets @p field of the change to @p v (stolen). */
int op_change_set(rapport_change *c, const char *field, json_t *v);
/** The same for record @p i of a batch hook's change. */
json_t *op_change_get_i(rapport_change *c, int i, const char *field);
int op_change_set_i(rapport_change *c, int i, const char *field, json_t *v);
/** The string at @p field of @p obj, or NULL. */
const char *op_str(json_t *obj, const char *field);
/** The plugin's setting @p key (owned), or NULL. */
json_t *op_config(rapport_host *h, const char *key);
/** Writes a message into @p err and returns RAPPORT_EINVAL. */
int op_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Milliseconds since the epoch as the store's "YYYY-MM-DDTHH:MM:SS.sssZ". */
void op_fmt_time(int64_t ms, char out[32]);
/** The inverse of op_fmt_time, or -1. */
int64_t op_parse_time(const char *s);
/** "90s", "4h", "1h30m" in milliseconds, or -1. */
int64_t op_parse_delay(const char *s);
/** An exact decimal at @p scale as a scaled integer. */
bool op_dec_parse(const char *s, int scale, int64_t *out);
/** A scaled integer as the store's decimal string (owned JSON string). */
json_t *op_dec_json(int64_t v, int scale);
/** The default country's calling code ("98"), "" when none is configured. */
void op_default_cc(rapport_host *h, char cc[8]);
/** A phone number in its canonical form: "+<country><number>" when the country is known. */
int op_norm_phone(const char *in, const char *cc, char *out, size_t cap, char *why, size_t wlen);

/** Deals, pipelines, lead conversion (sales.c). */
int op_sales_init(rapport_host *h, char *err, size_t errlen);
/** Tickets and their SLAs, activities (service.c). */
int op_service_init(rapport_host *h, char *err, size_t errlen);
/** Products, orders, invoices, mailing lists and consent (orders.c). */
int op_orders_init(rapport_host *h, char *err, size_t errlen);
/** Duplicates and merging (people.c). */
int op_people_init(rapport_host *h, char *err, size_t errlen);
/** The vCard and iCalendar import/export formats (formats.c). */
int op_formats_init(rapport_host *h, char *err, size_t errlen);
/** `rapport demo-data` (demo.c). */
int op_demo_init(rapport_host *h, char *err, size_t errlen);

#endif
