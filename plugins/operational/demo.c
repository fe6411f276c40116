/*
 * demo.c — `rapport demo-data [--size small|large]`: a living CRM to meet, the same every time
 * (a fixed seed; only the times follow the clock): accounts with their contacts, leads at every
 * status, deals across every stage, calls, meetings and tasks, tickets in every SLA state,
 * products, orders from placed to delivered with their lines and invoices, campaigns and a
 * mailing list with opt-ins and opt-outs. Everything goes through the write path, so the rules
 * run on it as on any other data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operational.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)

static uint64_t seed;

static unsigned rnd(unsigned n)
{
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return n ? (unsigned)((seed >> 33) % n) : 0;
}

#define PICK(a) (a[rnd(sizeof a / sizeof *a)])

static const char *const firsts[] = {
    "Ada", "Grace", "Alan", "Sara", "Reza", "Maryam", "Omid", "Leila", "Jon", "Emma", "Noah",
    "Olivia", "Liam", "Zoë", "Mateo", "Sofía", "Yuki", "Hiroshi", "Amara", "Kwame", "Ingrid",
    "Lars", "Priya", "Arjun", "Fatima", "Karim", "Elena", "Marco", "Chloé", "Émile"};
static const char *const lasts[] = {
    "Lovelace", "Hopper", "Turing", "Rahimi", "Karimi", "Mirzakhani", "Tehrani", "Smith",
    "García", "Müller", "Rossi", "Nakamura", "Okafor", "Mensah", "Johansson", "Patel", "Sharma",
    "Haddad", "Novak", "Dubois", "Zola", "Nguyen", "Kowalski", "Silva", "O'Neil"};
static const char *const companies[] = {
    "Acme", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises", "Tyrell",
    "Cyberdyne", "Soylent", "Hooli", "Pied Piper", "Vandelay Industries", "Wonka", "Aperture",
    "Black Mesa", "Oscorp", "Massive Dynamic", "Nakatomi", "Gringotts", "Dunder Mifflin",
    "Parsian Trading", "Caspian Logistics", "Alborz Software", "Zagros Foods", "Kish Travel"};
static const char *const industries[] = {"software", "retail", "logistics", "finance",
                                         "manufacturing", "health", "education", "travel"};
static const char *const titles[] = {"CEO", "CTO", "Head of Sales", "Buyer", "Engineer",
                                     "Office Manager", "CFO", "Support Lead", "Designer"};
static const char *const sources[] = {"web", "referral", "event", "ads", "cold call"};
static const char *const owners[] = {"ana", "ben", "cy", "dana"};
static const char *const products[][2] = {
    {"CRM-SEAT", "99.00"},   {"CRM-SEAT-PRO", "199.00"}, {"ONBOARD", "1500.00"},
    {"TRAINING", "750.00"},  {"SUPPORT-GOLD", "299.00"}, {"API-PACK", "49.50"},
    {"SMS-1000", "19.99"},   {"STORAGE-TB", "12.25"},    {"CONSULT-H", "140.00"},
    {"LEGACY-MIGR", "2400.00"}};

typedef struct {
    rapport_host *h;
    int64_t now;
    char err[512];
    long made;
} demo_t;

/* Creates @p rec (owned) as an @p entity; 0 on failure (d->err says why). */
static int64_t make(demo_t *d, const char *entity, json_t *rec)
{
    char *t = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    int64_t id = 0;
    if (op_api->create(d->h, entity, t, &id)) {
        if (!d->err[0])
            snprintf(d->err, sizeof d->err, "%s: %s", entity, op_api->last_error(d->h));
        id = 0;
    }
    free(t);
    d->made += id != 0;
    return id;
}

static void change(demo_t *d, const char *entity, int64_t id, json_t *patch)
{
    char *t = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    if (id && op_api->update(d->h, entity, id, t, 0) && !d->err[0])
        snprintf(d->err, sizeof d->err, "%s %lld: %s", entity, (long long)id,
                 op_api->last_error(d->h));
    free(t);
}

static json_t *at(demo_t *d, int64_t delta)
{
    char t[32];
    op_fmt_time(d->now + delta, t);
    return json_string(t);
}

static void slug(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z'))
            out[n++] = (char)(*in | 0x20);
    out[n] = '\0';
}

static int fill(demo_t *d, int k)
{
    static const char *const stages[] = {"new", "qualified", "proposal", "negotiation", "won",
                                         "lost"};
    static const char *const lead_status[] = {"new", "contacted", "qualified", "unqualified"};
    int n_acc = 20 * k, n_con = 60 * k, n_lead = 30 * k, n_deal = 25 * k, n_act = 40 * k,
        n_tic = 16 * k, n_ord = 20 * k;
    int64_t *acc = calloc((size_t)n_acc, sizeof *acc), *con = calloc((size_t)n_con, sizeof *con);
    int64_t prod[10] = {0};
    for (int i = 0; i < n_acc && !d->err[0]; i++) {
        const char *co = companies[i % 25];
        char name[96], dom[96], site[128];
        if (i < 25)
            snprintf(name, sizeof name, "%s", co);
        else
            snprintf(name, sizeof name, "%s %d", co, i / 25 + 1);
        slug(name, dom, sizeof dom);
        snprintf(site, sizeof site, "https://%s.example", dom);
        strncat(dom, ".example", sizeof dom - strlen(dom) - 1);
        acc[i] = make(d, "account",
                      json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "name", name, "domain", dom,
                                "website", site, "industry", PICK(industries), "employees",
                                10 + (int)rnd(5000), "owner", PICK(owners)));
    }
    for (int i = 0; i < n_con && !d->err[0]; i++) {
        const char *f = PICK(firsts), *l = PICK(lasts);
        char email[160], fs[64], ls[64], phone[32];
        slug(f, fs, sizeof fs);
        slug(l, ls, sizeof ls);
        snprintf(email, sizeof email, "%s.%s%d@mail.example", fs, ls, i);
        snprintf(phone, sizeof phone, "+1 415 555 %04u", rnd(10000));
        con[i] = make(d, "contact",
                      json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "first_name", f,
                                "last_name", l, "email", email, "phone", phone, "title",
                                PICK(titles), "account", (json_int_t)acc[i % n_acc], "owner",
                                PICK(owners), "source", PICK(sources)));
    }
    for (int i = 0; i < n_lead && !d->err[0]; i++) {
        const char *f = PICK(firsts), *l = PICK(lasts);
        char email[160], fs[64], ls[64];
        slug(f, fs, sizeof fs);
        slug(l, ls, sizeof ls);
        snprintf(email, sizeof email, "%s.%s.lead%d@mail.example", fs, ls, i);
        make(d, "lead", json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "first_name", f, "last_name",
                                  l, "email", email, "company", PICK(companies), "source",
                                  PICK(sources), "status", lead_status[i % 4], "owner",
                                  PICK(owners)));
    }
    for (int i = 0; i < 10 && !d->err[0]; i++)
        prod[i] = make(d, "product", json_pack("{s:s,s:s,s:s}", "sku", products[i][0], "name",
                                               products[i][0], "price", products[i][1]));
    for (int i = 0; i < n_deal && !d->err[0]; i++) {
        char name[128], amount[32];
        int a = (int)rnd((unsigned)n_acc);
        snprintf(name, sizeof name, "%s — %s", "Subscription", companies[a % 25]);
        snprintf(amount, sizeof amount, "%u.%02u", 500 + rnd(50000), rnd(100));
        int64_t id = make(d, "deal", json_pack("{s:s,s:s,s:I,s:I,s:s}", "name", name, "amount",
                                               amount, "account", (json_int_t)acc[a], "contact",
                                               (json_int_t)con[a % n_con], "owner",
                                               PICK(owners)));
        /* Walk it through the stages up to where it stands: stage events, as in real life. */
        int to = i % 6;
        for (int s = 1; s <= to && s <= 4 && !d->err[0]; s++)
            change(d, "deal", id, json_pack("{s:s}", "stage", stages[s]));
        if (to == 5)
            change(d, "deal", id, json_pack("{s:s,s:s}", "stage", "lost", "close_reason",
                                            i % 2 ? "price" : "went with a competitor"));
    }
    for (int i = 0; i < n_act && !d->err[0]; i++) {
        static const char *const kinds[] = {"call", "meeting", "task", "note"};
        const char *kind = kinds[i % 4];
        int64_t when = (int64_t)(rnd(20 * 24)) * HOUR - 10 * DAY; /* the last and next 10 days */
        char subject[128];
        snprintf(subject, sizeof subject, "%s with %s",
                 strcmp(kind, "meeting") == 0 ? "Demo" : strcmp(kind, "call") == 0 ? "Call"
                                                                                    : "Follow-up",
                 companies[i % 25]);
        json_t *a = json_pack("{s:s,s:s,s:o,s:b,s:s,s:I,s:s}", "kind", kind, "subject", subject,
                              "due_at", at(d, when), "done", when < 0, "related_entity",
                              "contact", "related_id", (json_int_t)con[i % n_con], "owner",
                              PICK(owners));
        if (strcmp(kind, "meeting") == 0) {
            json_object_set_new(a, "ends_at", at(d, when + HOUR));
            json_object_set_new(a, "location", json_string(i % 8 ? "Video call" : "Room 1"));
            if (i % 3)
                json_object_set_new(a, "next_step", json_string("send the proposal"));
        }
        make(d, "activity", a);
    }
    /* Tickets in every SLA state: on time, answered, resolved, and breached. */
    static const char *const prios[] = {"urgent", "high", "normal", "low"};
    for (int i = 0; i < n_tic && !d->err[0]; i++) {
        char subject[128];
        static const char *const issues[] = {"Cannot log in", "Invoice is wrong",
                                             "Export is slow", "Feature request: dark mode",
                                             "SMS not delivered", "Password reset"};
        snprintf(subject, sizeof subject, "%s", issues[i % 6]);
        int64_t id = make(d, "ticket", json_pack("{s:s,s:s,s:I,s:s}", "subject", subject,
                                                 "priority", prios[i % 4], "contact",
                                                 (json_int_t)con[i % n_con], "owner",
                                                 PICK(owners)));
        switch (i % 4) {
        case 0: /* new, its deadlines ahead */
            break;
        case 1: /* answered */
            change(d, "ticket", id, json_pack("{s:s}", "status", "open"));
            break;
        case 2: /* resolved */
            change(d, "ticket", id, json_pack("{s:s}", "status", "resolved"));
            break;
        case 3: /* its first answer was due an hour ago: the engine marks the breach (and
                 * the escalation rule acts) as soon as it runs */
            change(d, "ticket", id, json_pack("{s:o}", "first_response_due", at(d, -HOUR)));
            break;
        }
    }
    /* Orders through their statuses, with lines and, once paid, an invoice. */
    static const char *const path[] = {"paid", "shipped", "delivered"};
    for (int i = 0; i < n_ord && !d->err[0]; i++) {
        int64_t o = make(d, "order", json_pack("{s:I,s:I,s:s}", "contact",
                                               (json_int_t)con[i % n_con], "account",
                                               (json_int_t)acc[i % n_acc], "owner",
                                               PICK(owners)));
        int lines = 1 + (int)rnd(4);
        for (int l = 0; l < lines && !d->err[0]; l++)
            make(d, "order_line", json_pack("{s:I,s:I,s:i}", "order", (json_int_t)o, "product",
                                            (json_int_t)prod[rnd(10)], "quantity",
                                            1 + (int)rnd(10)));
        int steps = i % 5; /* 0 placed … 3 delivered, 4 cancelled */
        if (steps == 4) {
            change(d, "order", o, json_pack("{s:s}", "status", "cancelled"));
            continue;
        }
        for (int s = 0; s < steps && !d->err[0]; s++)
            change(d, "order", o, json_pack("{s:s}", "status", path[s]));
        if (steps >= 1)
            make(d, "invoice", json_pack("{s:I}", "order", (json_int_t)o));
    }
    int64_t list = make(d, "mailing_list", json_pack("{s:s,s:s}", "name", "Newsletter",
                                                     "description", "Monthly product news"));
    static const char *const camps[][2] = {{"Spring launch", "email"}, {"Trade fair", "event"},
                                           {"Win-back", "sms"}};
    for (int i = 0; i < 3 && !d->err[0]; i++)
        make(d, "campaign", json_pack("{s:s,s:s,s:o,s:o,s:I}", "name", camps[i][0], "kind",
                                      camps[i][1], "starts_at", at(d, (i - 1) * 7 * DAY),
                                      "ends_at", at(d, (i + 1) * 7 * DAY), "list",
                                      (json_int_t)list));
    for (int i = 0; i < n_con / 3 && !d->err[0]; i++) {
        int64_t m = make(d, "list_member", json_pack("{s:I,s:I,s:s}", "list", (json_int_t)list,
                                                     "contact", (json_int_t)con[i * 3],
                                                     "source", i % 2 ? "signup form"
                                                                     : "trade fair"));
        if (i % 7 == 0)
            change(d, "list_member", m, json_pack("{s:o,s:s}", "opted_out_at", at(d, 0),
                                                  "opt_out_source", "unsubscribe link"));
    }
    free(acc);
    free(con);
    return d->err[0] ? RAPPORT_EINVAL : 0;
}

/* rapport demo-data [--size small|large] */
static int cmd_demo(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)ud;
    int k = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc && strcmp(argv[i + 1], "small") == 0)
            k = 1, i++;
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc &&
                 strcmp(argv[i + 1], "large") == 0)
            k = 50, i++;
        else {
            fprintf(stderr, "usage: rapport demo-data [--size small|large]\n");
            return 2;
        }
    }
    int64_t n = 0;
    if (api->count(h, "contact", NULL, &n) == 0 && n > 0) {
        fprintf(stderr, "rapport: demo-data fills an empty database; this one has %lld "
                        "contacts already\n", (long long)n);
        return 1;
    }
    demo_t d = {.h = h, .now = api->now_ms(h)};
    seed = 20261124;
    if (api->begin(h)) {
        fprintf(stderr, "rapport: %s\n", api->last_error(h));
        return 1;
    }
    if (fill(&d, k)) {
        api->rollback(h);
        fprintf(stderr, "rapport: demo-data: %s (nothing was stored)\n", d.err);
        return 1;
    }
    if (api->commit(h)) {
        fprintf(stderr, "rapport: %s\n", api->last_error(h));
        return 1;
    }
    printf("demo data: %ld records (%s): accounts, contacts, leads, deals, activities, tickets, "
           "products, orders, invoices, campaigns, a mailing list\n",
           d.made, k == 1 ? "small" : "large");
    return 0;
}

int op_demo_init(rapport_host *h, char *err, size_t errlen)
{
    if (op_api->command(h, "demo-data", "fill an empty database with a realistic CRM: "
                                        "demo-data [--size small|large]", cmd_demo, NULL))
        return op_fail(err, errlen, "%s", op_api->last_error(h));
    return 0;
}
