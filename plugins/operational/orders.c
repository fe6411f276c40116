/*
 * orders.c — orders with lines and exact totals, their status from placed to delivered,
 * invoices with gap-free numbers, and mailing-list consent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operational.h"

/* The statuses an order moves through, and where each may go. */
static const struct {
    const char *from, *to;
} moves[] = {
    {"placed", "paid"},     {"placed", "cancelled"}, {"paid", "shipped"},
    {"paid", "cancelled"},  {"shipped", "delivered"},
};

/* An id or count as a record holds it: an integer, or a numeric string (a CSV cell). */
static int64_t as_int(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    const char *t = json_string_value(v);
    if (!t || !*t)
        return 0;
    char *end;
    long long n = strtoll(t, &end, 10);
    return *end ? 0 : n;
}

/* ---- order lines ------------------------------------------------------------------------- */

/* The sum of the totals of the live lines of @p order, except line @p skip. */
static int lines_total(rapport_host *h, int64_t order, int64_t skip, int64_t *sum, char *err,
                       size_t errlen)
{
    *sum = 0;
    char *after = NULL;
    for (;;) {
        json_t *q = json_pack("{s:{s:I},s:i,s:[s,s]}", "where", "order", (json_int_t)order, "limit",
                              500, "fields", "id", "total");
        if (after)
            json_object_set_new(q, "after", json_string(after));
        free(after);
        after = NULL;
        char *qt = json_dumps(q, JSON_COMPACT);
        json_decref(q);
        json_t *page = op_json(op_api->find(h, "order_line", qt));
        free(qt);
        if (!page)
            return op_fail(err, errlen, "order %lld: %s", (long long)order,
                           op_api->last_error(h));
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(page, "data"), i, line) {
            int64_t v = 0;
            if (json_integer_value(json_object_get(line, "id")) != skip &&
                op_dec_parse(op_str(line, "total"), 2, &v) && op_api->dec_add(h, *sum, v, sum)) {
                json_decref(page);
                return op_fail(err, errlen, "order %lld: the total of its lines is too large",
                               (long long)order);
            }
        }
        const char *next = op_str(page, "next");
        after = next ? strdup(next) : NULL;
        json_decref(page);
        if (!after)
            return 0;
    }
}

/* Writes @p total as order @p order's total. */
static int set_order_total(rapport_host *h, int64_t order, int64_t total, char *err,
                           size_t errlen)
{
    json_t *p = json_pack("{s:o}", "total", op_dec_json(total, 2));
    char *t = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    int rc = op_api->update(h, "order", order, t, 0);
    free(t);
    return rc ? op_fail(err, errlen, "order %lld: %s", (long long)order, op_api->last_error(h))
              : 0;
}

/* The total of line @p i of the change: quantity × unit price (the product's price when none
 * is given, set on the line), rounded half up to the cent, set as the line's total. */
static int line_price(rapport_host *h, rapport_change *c, int i, int act, int64_t *out,
                      char *err, size_t errlen)
{
    json_t *qv = op_change_get_i(c, i, "quantity"), *pv = op_change_get_i(c, i, "unit_price");
    json_t *prodv = op_change_get_i(c, i, "product");
    int rc = 0;
    int64_t q = 1000, price = 0;
    if (json_is_string(qv) || json_is_integer(qv) || json_is_real(qv)) {
        char buf[48];
        const char *qs = json_string_value(qv);
        if (!qs) {
            if (json_is_integer(qv))
                snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(qv));
            else
                snprintf(buf, sizeof buf, "%.3f", json_real_value(qv));
            qs = buf;
        }
        if (!op_dec_parse(qs, 3, &q) || q <= 0) {
            rc = op_fail(err, errlen, "order_line.quantity: %s is not a positive quantity", qs);
            goto out;
        }
    }
    if (json_is_null(pv) || !pv || (json_is_string(pv) && !*json_string_value(pv))) {
        if (as_int(prodv) <= 0) {
            rc = op_fail(err, errlen, "order_line: a line needs a unit_price or a product");
            goto out;
        }
        json_t *prod = op_get(h, "product", as_int(prodv));
        const char *ps = op_str(prod, "price");
        if (!ps || !op_dec_parse(ps, 2, &price)) {
            json_decref(prod);
            rc = op_fail(err, errlen, "order_line: product %lld: %s", (long long)as_int(prodv),
                         prod ? "it has no price" : op_api->last_error(h));
            goto out;
        }
        if (json_is_false(json_object_get(prod, "active")) && act == RAPPORT_CREATE) {
            json_decref(prod);
            rc = op_fail(err, errlen, "order_line: product %lld is not active",
                         (long long)as_int(prodv));
            goto out;
        }
        json_decref(prod);
        op_change_set_i(c, i, "unit_price", op_dec_json(price, 2));
    } else {
        char buf[48];
        const char *ps = json_string_value(pv);
        if (!ps && json_is_number(pv)) {
            snprintf(buf, sizeof buf, "%.2f", json_number_value(pv));
            ps = buf;
        }
        if (!ps || !op_dec_parse(ps, 2, &price)) {
            rc = op_fail(err, errlen, "order_line.unit_price: not an amount");
            goto out;
        }
    }
    /* q has 3 decimals, price 2: their product, rounded half up (away from zero) to 2. */
    int64_t total;
    if (op_api->dec_mul(h, q, 3, price, 2, 2, &total) || total > INT64_MAX / 2 ||
        total < -(INT64_MAX / 2)) {
        rc = op_fail(err, errlen, "order_line: the total is too large");
        goto out;
    }
    op_change_set_i(c, i, "total", op_dec_json(total, 2));
    *out = total;
out:
    json_decref(qv);
    json_decref(pv);
    json_decref(prodv);
    return rc;
}

/* Batch before-hook on new order lines: each line's total, then each order's total is the sum
 * of its stored lines and of the batch's (a bulk create of several lines of one order counts
 * them all), in the same transaction. */
static int line_batch(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                      char *err, size_t errlen)
{
    (void)ud;
    int n = api->change_count(c), rc = 0;
    int64_t *total = calloc((size_t)(n ? n : 1), sizeof *total);
    int64_t *order = calloc((size_t)(n ? n : 1), sizeof *order);
    if (!total || !order) {
        free(total);
        free(order);
        return op_fail(err, errlen, "out of memory");
    }
    for (int i = 0; i < n && !rc; i++) {
        json_t *ov = op_change_get_i(c, i, "order");
        order[i] = as_int(ov);
        json_decref(ov);
        if ((rc = line_price(h, c, i, RAPPORT_CREATE, &total[i], err, errlen)))
            api->change_refuse(c, i);
    }
    for (int i = 0; i < n && !rc; i++) {
        bool first = order[i] != 0;
        for (int j = 0; j < i && first; j++)
            first = order[j] != order[i];
        if (!first)
            continue; /* that order is summed already */
        int64_t sum;
        if ((rc = lines_total(h, order[i], 0, &sum, err, errlen)))
            break;
        for (int j = i; j < n; j++)
            if (order[j] == order[i])
                sum += total[j];
        rc = set_order_total(h, order[i], sum, err, errlen);
    }
    free(total);
    free(order);
    return rc;
}

/* Before-hook on a changed, deleted or restored order line: its total again, and its order's
 * total without it (deleted) or with it (restored, changed). */
static int line_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                     char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    int64_t id = api->change_id(c);
    int rc = 0;
    json_t *old = op_get(h, "order_line", id), *orderv = NULL;
    int64_t was = json_integer_value(json_object_get(old, "order")), sum, mine = 0;
    if (act == RAPPORT_DELETE || act == RAPPORT_PURGE || act == RAPPORT_RESTORE) {
        if (!was)
            goto out;
        if ((rc = lines_total(h, was, id, &sum, err, errlen)))
            goto out;
        if (act == RAPPORT_RESTORE)
            op_dec_parse(op_str(old, "total"), 2, &mine);
        rc = set_order_total(h, was, sum + mine, err, errlen);
        goto out;
    }
    orderv = op_change_get(c, "order");
    int64_t order = as_int(orderv);
    if (was && was != order) {
        rc = op_fail(err, errlen, "order_line %lld: a line stays on its order (%lld)",
                     (long long)id, (long long)was);
        goto out;
    }
    if ((rc = line_price(h, c, 0, act, &mine, err, errlen)))
        goto out;
    if (!(rc = lines_total(h, order, id, &sum, err, errlen)))
        rc = set_order_total(h, order, sum + mine, err, errlen);
out:
    json_decref(orderv);
    json_decref(old);
    return rc;
}

/* ---- orders ------------------------------------------------------------------------------ */

static int order_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                      char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    char now[32];
    op_fmt_time(api->now_ms(h), now);
    json_t *sv = op_change_get(c, "status"), *old = NULL;
    const char *to = json_string_value(sv) ? json_string_value(sv) : "placed";
    int rc = 0;
    if (act == RAPPORT_CREATE) {
        json_t *at = op_change_get(c, "placed_at");
        if (!json_is_string(at))
            op_change_set(c, "placed_at", json_string(now));
        json_decref(at);
        op_change_set(c, "status_changed_at", json_string(now));
        goto out;
    }
    old = op_get(h, "order", api->change_id(c));
    const char *from = op_str(old, "status");
    if (!from || strcmp(from, to) == 0)
        goto out;
    bool ok = false;
    for (size_t i = 0; i < sizeof moves / sizeof *moves; i++)
        ok |= strcmp(moves[i].from, from) == 0 && strcmp(moves[i].to, to) == 0;
    if (!ok) {
        rc = op_fail(err, errlen, "order %lld: cannot go from %s to %s (placed → paid → shipped "
                                  "→ delivered; cancelled before shipping)",
                     (long long)api->change_id(c), from, to);
        goto out;
    }
    op_change_set(c, "status_changed_at", json_string(now));
    json_t *p = json_pack("{s:s,s:s}", "from", from, "to", to);
    char *t = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (api->emit(h, "order.status_changed", "order", api->change_id(c), t))
        rc = op_fail(err, errlen, "%s", api->last_error(h));
    free(t);
out:
    json_decref(sv);
    json_decref(old);
    return rc;
}

/* ---- invoices ---------------------------------------------------------------------------- */

/* Before-hook on invoices: the number never changes, and an invoice is voided, never purged
 * (numbers must stay without gaps). */
static int invoice_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                        char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    if (act == RAPPORT_PURGE)
        return op_fail(err, errlen, "invoice %lld: invoices are never purged (numbers must stay "
                                    "without gaps): set its status to void",
                       (long long)api->change_id(c));
    if (act != RAPPORT_UPDATE)
        return 0;
    json_t *old = op_get(h, "invoice", api->change_id(c));
    json_t *n = op_change_get(c, "number"), *s = op_change_get(c, "seq");
    bool same = json_equal(n, json_object_get(old, "number")) &&
                json_equal(s, json_object_get(old, "seq"));
    json_decref(old);
    json_decref(n);
    json_decref(s);
    return same ? 0 : op_fail(err, errlen, "invoice %lld: its number never changes",
                              (long long)api->change_id(c));
}

/* Batch before-hook on new invoices: the next numbers, one after another through the batch, in
 * the transaction that stores them (a refused invoice takes none, so numbers have no gaps),
 * and each its order's total. */
static int invoice_batch(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                         char *err, size_t errlen)
{
    (void)ud;
    json_t *q = json_pack("{s:s,s:i,s:b,s:[s]}", "order", "-seq", "limit", 1, "deleted", 1,
                          "fields", "seq");
    char *qt = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    json_t *last = op_json(api->find(h, "invoice", qt));
    free(qt);
    if (!last)
        return op_fail(err, errlen, "invoice: %s", api->last_error(h));
    int64_t seq = json_integer_value(json_object_get(json_array_get(json_object_get(last, "data"),
                                                                    0), "seq"));
    json_decref(last);
    json_t *pre = op_config(h, "invoice_prefix");
    const char *prefix = json_is_string(pre) ? json_string_value(pre) : "INV-";
    char now[32];
    op_fmt_time(api->now_ms(h), now);
    int rc = 0, n = api->change_count(c);
    for (int i = 0; i < n && !rc; i++) {
        char number[96];
        snprintf(number, sizeof number, "%s%06lld", prefix, (long long)++seq);
        op_change_set_i(c, i, "seq", json_integer(seq));
        op_change_set_i(c, i, "number", json_string(number));
        json_t *at = op_change_get_i(c, i, "issued_at"), *tot = op_change_get_i(c, i, "total");
        json_t *ov = op_change_get_i(c, i, "order");
        if (!json_is_string(at))
            op_change_set_i(c, i, "issued_at", json_string(now));
        if (!json_is_string(tot) && as_int(ov) > 0) {
            json_t *order = op_get(h, "order", as_int(ov));
            if (!order) {
                rc = op_fail(err, errlen, "invoice: %s", api->last_error(h));
                api->change_refuse(c, i);
            } else {
                op_change_set_i(c, i, "total", json_incref(json_object_get(order, "total")));
                json_t *cur = op_change_get_i(c, i, "currency");
                if (!json_is_string(cur) && op_str(order, "currency"))
                    op_change_set_i(c, i, "currency",
                                    json_incref(json_object_get(order, "currency")));
                json_decref(cur);
            }
            json_decref(order);
        }
        json_decref(at);
        json_decref(tot);
        json_decref(ov);
    }
    json_decref(pre);
    return rc;
}

/* ---- consent ----------------------------------------------------------------------------- */

/* Before-hook on list members: an opt-in records when and from where; after an opt-out, only a
 * new opt-in with its own time and source brings the contact back. */
static int member_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    char now[32];
    op_fmt_time(api->now_ms(h), now);
    json_t *src = op_change_get(c, "source"), *in = op_change_get(c, "opted_in_at");
    json_t *out = op_change_get(c, "opted_out_at"), *old = NULL;
    int rc = 0;
    if (act == RAPPORT_CREATE) {
        if (!json_is_string(src) || !*json_string_value(src)) {
            rc = op_fail(err, errlen, "list_member: consent needs its source (a form, an "
                                      "import, an event…): set source");
            goto done;
        }
        if (!json_is_string(in))
            op_change_set(c, "opted_in_at", json_string(now));
        json_t *lv = op_change_get(c, "list"), *cv = op_change_get(c, "contact");
        if (json_is_integer(lv) && json_is_integer(cv)) { /* else the store says: required */
            json_t *w = json_pack("{s:O,s:O}", "list", lv, "contact", cv);
            char *wt = json_dumps(w, JSON_COMPACT);
            int64_t n = 0;
            if (api->count(h, "list_member", wt, &n) == 0 && n > 0)
                rc = op_fail(err, errlen, "list_member: contact %lld is already on list %lld "
                                          "(update that membership instead)",
                             (long long)json_integer_value(cv), (long long)json_integer_value(lv));
            free(wt);
            json_decref(w);
        }
        json_decref(lv);
        json_decref(cv);
        goto done;
    }
    if (act != RAPPORT_UPDATE)
        goto done;
    old = op_get(h, "list_member", api->change_id(c));
    bool was_out = json_is_string(json_object_get(old, "opted_out_at"));
    if (was_out && !json_is_string(out)) {
        /* Back in: only with a new opt-in of its own. */
        bool new_in = json_is_string(in) && !json_equal(in, json_object_get(old, "opted_in_at"));
        bool new_src = json_is_string(src) && *json_string_value(src);
        if (!new_in || !new_src)
            rc = op_fail(err, errlen, "list_member %lld: opted out at %s; coming back needs a "
                                      "new opt-in: set opted_in_at and source",
                         (long long)api->change_id(c), op_str(old, "opted_out_at"));
    }
done:
    json_decref(src);
    json_decref(in);
    json_decref(out);
    json_decref(old);
    return rc;
}

/* Whether contact @p contact may be contacted (on list @p list when > 0): not flagged
 * do-not-contact or opted out of email, and, for a list, opted in and not out. */
static bool can_contact(rapport_host *h, int64_t contact, int64_t list, char *why, size_t wlen)
{
    json_t *c = op_get(h, "contact", contact);
    bool ok = false;
    if (!c)
        snprintf(why, wlen, "%s", op_api->last_error(h));
    else if (json_is_string(json_object_get(c, "deleted_at")))
        snprintf(why, wlen, "contact %lld is deleted", (long long)contact);
    else if (json_is_true(json_object_get(c, "do_not_contact")))
        snprintf(why, wlen, "contact %lld is marked do not contact", (long long)contact);
    else if (json_is_true(json_object_get(c, "email_opt_out")))
        snprintf(why, wlen, "contact %lld opted out of email", (long long)contact);
    else if (list <= 0)
        ok = true;
    else {
        json_t *q = json_pack("{s:{s:I,s:I},s:i}", "where", "list", (json_int_t)list, "contact",
                              (json_int_t)contact, "limit", 1);
        char *qt = json_dumps(q, JSON_COMPACT);
        json_decref(q);
        json_t *r = op_json(op_api->find(h, "list_member", qt));
        free(qt);
        json_t *m = json_array_get(json_object_get(r, "data"), 0);
        if (!m)
            snprintf(why, wlen, "contact %lld never opted in to list %lld", (long long)contact,
                     (long long)list);
        else if (json_is_string(json_object_get(m, "opted_out_at")))
            snprintf(why, wlen, "contact %lld opted out of list %lld at %s", (long long)contact,
                     (long long)list, op_str(m, "opted_out_at"));
        else
            ok = true;
        json_decref(r);
    }
    json_decref(c);
    return ok;
}

/* crm.operational.can_contact(contact_id [, list_id]) -> {ok = bool, why = text} */
static int lua_can_contact(rapport_host *h, const rapport_api *api, const char *args,
                           char **result, void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *cid = json_array_get(a, 0), *lid = json_array_get(a, 1);
    if (!json_is_integer(cid)) {
        json_decref(a);
        return op_fail(err, errlen, "can_contact(contact_id [, list_id]): contact_id must be an "
                                    "integer");
    }
    char why[256] = "";
    bool ok = can_contact(h, json_integer_value(cid), json_integer_value(lid), why, sizeof why);
    json_decref(a);
    json_t *r = ok ? json_pack("{s:b}", "ok", 1) : json_pack("{s:b,s:s}", "ok", 0, "why", why);
    char *t = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    *result = api->strdup(t);
    free(t);
    return 0;
}

int op_orders_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = op_api;
    int rc = 0;
    for (int act = RAPPORT_UPDATE; act <= RAPPORT_PURGE && !rc; act++)
        rc = api->hook(h, "order_line", act, 20, line_hook, NULL) ||
             api->hook(h, "invoice", act, 20, invoice_hook, NULL);
    rc = rc || api->batch_hook(h, "order_line", RAPPORT_CREATE, 20, line_batch, NULL) ||
         api->batch_hook(h, "invoice", RAPPORT_CREATE, 20, invoice_batch, NULL);
    if (rc || api->hook(h, "order", RAPPORT_CREATE, 20, order_hook, NULL) ||
        api->hook(h, "order", RAPPORT_UPDATE, 20, order_hook, NULL) ||
        api->hook(h, "list_member", RAPPORT_CREATE, 20, member_hook, NULL) ||
        api->hook(h, "list_member", RAPPORT_UPDATE, 20, member_hook, NULL) ||
        api->lua_function(h, "can_contact", lua_can_contact, NULL))
        return op_fail(err, errlen, "%s", api->last_error(h));
    return 0;
}
