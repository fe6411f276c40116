/*
 * people.c — duplicates and merging of accounts, contacts and leads.
 *
 * Records are likely duplicates when they share a (normalised) email or phone, or when their
 * names fold to the same text or differ by one letter at the same account. A scan reads the
 * table once, a page at a time, keeps each distinct key once in one arena and joins records
 * that share a key (union-find), so a million contacts take seconds and about 100 MB. A merge keeps one record, fills its
 * empty fields from the others, points every reference to the others at it, marks the others
 * merged into it and deletes them (softly: nothing is lost), and records the whole merge as an
 * event, so it can be explained afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operational.h"

#define PAGE 10000 /* records a read: the most a page holds */
#define BUCKET_MAX 500 /* records per account compared pairwise for close names */

enum { R_EMAIL = 1, R_PHONE = 2, R_NAME = 4 };

/* ---- the keys: one arena of text, and tables of first occurrences over it ---------------- */

/*
 * Every key a scan keeps (an email, a phone, a folded name) is copied once into one growing
 * block and named by its offset: a strdup per key made a million small allocations per kind,
 * and their malloc overhead and freeing cost more than the scan itself.
 */
typedef struct {
    char *p;
    size_t len, cap;
} arena_t;

#define NO_KEY UINT32_MAX

/* @p s copied into @p a (with its NUL), after the @p pre bytes of @p head; its offset, or
 * NO_KEY when out of memory or past 4 GiB. */
static uint32_t arena_put(arena_t *a, const void *head, size_t pre, const char *s)
{
    size_t n = pre + strlen(s) + 1;
    if (a->len + n > a->cap) {
        size_t nc = a->cap ? a->cap : 1 << 20;
        while (a->len + n > nc)
            nc *= 2;
        char *np = realloc(a->p, nc);
        if (!np)
            return NO_KEY;
        a->p = np;
        a->cap = nc;
    }
    if (a->len + n >= NO_KEY)
        return NO_KEY;
    if (pre)
        memcpy(a->p + a->len, head, pre);
    memcpy(a->p + a->len + pre, s, n - pre);
    a->len += n;
    return (uint32_t)(a->len - n);
}

/* One slot: the key's hash (its upper half, to skip most comparisons) and where it is in the
 * arena: the record that had it first (an int), then the key. */
typedef struct {
    uint32_t tag; /* 0: empty */
    uint32_t at;  /* offset in the arena */
} slot_t;

typedef struct {
    slot_t *slots;
    size_t cap, n;
} table_t;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

/* The record stored under @p key, after storing @p v there if it was absent (the key copied
 * into @p a). -1 on no memory. */
static int table_put(table_t *t, arena_t *a, const char *key, int v)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        slot_t *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].tag)
                continue;
            size_t j = hash(a->p + t->slots[i].at + sizeof(int)) & (nc - 1);
            while (ns[j].tag)
                j = (j + 1) & (nc - 1);
            ns[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = nc;
    }
    uint64_t h = hash(key);
    uint32_t tag = tag_of(h);
    size_t j = h & (t->cap - 1);
    while (t->slots[j].tag) {
        const char *at = a->p + t->slots[j].at;
        if (t->slots[j].tag == tag && strcmp(at + sizeof(int), key) == 0) {
            int first;
            memcpy(&first, at, sizeof first);
            return first;
        }
        j = (j + 1) & (t->cap - 1);
    }
    uint32_t off = arena_put(a, &v, sizeof v, key);
    if (off == NO_KEY)
        return -1;
    t->slots[j] = (slot_t){.tag = tag, .at = off};
    t->n++;
    return v;
}

static void table_free(table_t *t)
{
    free(t->slots);
    *t = (table_t){0};
}

/* ---- union-find ------------------------------------------------------------------------- */

static int find_root(int *parent, int i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static void join(int *parent, unsigned char *why, int a, int b, int reason)
{
    int ra = find_root(parent, a), rb = find_root(parent, b);
    if (ra != rb) {
        if (ra < rb)
            parent[rb] = ra, why[ra] |= why[rb];
        else
            parent[ra] = rb, why[rb] |= why[ra];
    }
    why[find_root(parent, a)] |= (unsigned char)reason;
}

/* Whether @p a and @p b differ by at most one letter (an insertion, deletion or change). */
static bool one_apart(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > lb) {
        const char *t = a;
        a = b, b = t;
        size_t tl = la;
        la = lb, lb = tl;
    }
    if (lb - la > 1)
        return false;
    size_t i = 0;
    while (i < la && a[i] == b[i])
        i++;
    if (i == la)
        return true; /* equal, or b has one letter more at its end */
    if (la == lb)
        return strcmp(a + i + 1, b + i + 1) == 0;
    return strcmp(a + i, b + i + 1) == 0;
}

/* A person with a name at an account, for the close names: kept only for those. */
typedef struct {
    int64_t account;
    int rec;
    uint32_t name; /* offset in the arena */
} named_t;

static int cmp_by_account(const void *x, const void *y)
{
    int64_t a = ((const named_t *)x)->account, b = ((const named_t *)y)->account;
    return a < b ? -1 : a > b;
}

/* ---- the scan --------------------------------------------------------------------------- */

typedef struct {
    int64_t *ids;
    int *parent;
    unsigned char *why;
    int n, cap;
} people_t;

/* Room for @p more records in @p P. */
static int people_grow(people_t *P, int more)
{
    if (P->n + more <= P->cap)
        return 0;
    int nc = P->cap ? P->cap : 1024;
    while (nc < P->n + more)
        nc += nc / 2;
    int64_t *ids = realloc(P->ids, sizeof *ids * (size_t)nc);
    if (ids)
        P->ids = ids;
    int *parent = realloc(P->parent, sizeof *parent * (size_t)nc);
    if (parent)
        P->parent = parent;
    unsigned char *why = realloc(P->why, (size_t)nc);
    if (why)
        P->why = why;
    if (!ids || !parent || !why)
        return -1;
    P->cap = nc;
    return 0;
}

/* The folded name: "first last" for people (@p a, @p b), the name of an account (@p a). Owned
 * by the host (api->free). */
static char *name_key(rapport_host *h, const char *a, const char *b, bool account)
{
    char buf[512];
    if (account)
        snprintf(buf, sizeof buf, "%s", a ? a : "");
    else
        snprintf(buf, sizeof buf, "%s %s", a ? a : "", b ? b : "");
    char *f = op_api->fold(h, buf);
    /* Only letters and digits count: "O'Neil" is "oneil". */
    size_t o = 0;
    for (size_t i = 0; f && f[i]; i++)
        if ((unsigned char)f[i] >= 0x80 || (f[i] >= 'a' && f[i] <= 'z') ||
            (f[i] >= '0' && f[i] <= '9'))
            f[o++] = f[i];
    if (f)
        f[o] = '\0';
    return f;
}

/* The keys of one scan: the records, their union-find, and the tables over one arena. */
typedef struct {
    rapport_host *h;
    bool account;
    people_t P;
    arena_t keys;
    table_t emails, phones, names;
    named_t *named; /* people at an account whose names may be one letter apart */
    int nnamed, capnamed;
} scan_t;

/* Keeps @p name of record @p k at account @p acct for the close names. -1 on no memory. */
static int keep_named(scan_t *S, int64_t acct, int k, const char *name)
{
    if (S->nnamed == S->capnamed) {
        int nc = S->capnamed ? S->capnamed + S->capnamed / 2 : 1024;
        named_t *nn = realloc(S->named, sizeof *nn * (size_t)nc);
        if (!nn)
            return -1;
        S->named = nn;
        S->capnamed = nc;
    }
    uint32_t off = arena_put(&S->keys, NULL, 0, name);
    if (off == NO_KEY)
        return -1;
    S->named[S->nnamed++] = (named_t){.account = acct, .rec = k, .name = off};
    return 0;
}

/* The fields a scan reads, in the order take() finds them. */
static const char scan_people[] = "[\"id\", \"account\", \"email\", \"phone\", \"first_name\", "
                                  "\"last_name\"]";
static const char scan_accounts[] = "[\"id\", \"id\", \"domain\", \"phone\", \"name\", \"name\"]";

/* Takes one record, its fields @p v as scan_people or scan_accounts names them, into the scan:
 * joins it to the first record that had its email, phone or folded name (a row function of
 * find_rows). Non-zero on no memory. */
static int take(void *ud, int n, const char *const *v, const size_t *lens)
{
    (void)lens;
    scan_t *S = ud;
    people_t *P = &S->P;
    bool account = S->account;
    if (n != 6 || !v[0] || people_grow(P, 1))
        return 1;
    int k = P->n++;
    P->ids[k] = strtoll(v[0], NULL, 10);
    int64_t acct = account || !v[1] ? 0 : strtoll(v[1], NULL, 10);
    P->parent[k] = k;
    P->why[k] = 0;
    const char *e = v[2], *p = v[3];
    int at;
    if (e && *e) {
        if ((at = table_put(&S->emails, &S->keys, e, k)) < 0)
            return 1;
        if (at != k)
            join(P->parent, P->why, at, k, R_EMAIL);
    }
    if (p && *p) {
        if ((at = table_put(&S->phones, &S->keys, p, k)) < 0)
            return 1;
        if (at != k)
            join(P->parent, P->why, at, k, R_PHONE);
    }
    /* Names count at the same account for people (anywhere for accounts): a person without
     * one is not folded, nor kept. */
    if (!account && !acct)
        return 0;
    char *name = name_key(S->h, v[4], v[5], account);
    if (!name)
        return 0;
    int rc = 0;
    if (strlen(name) >= 3) {
        char key[600];
        snprintf(key, sizeof key, "%lld:%s", account ? 0LL : (long long)acct, name);
        if ((at = table_put(&S->names, &S->keys, key, k)) < 0)
            rc = 1;
        else if (at != k)
            join(P->parent, P->why, at, k, R_NAME);
    }
    /* Kept for the close names at the same account (people only). */
    if (!rc && !account && strlen(name) >= 5)
        rc = keep_named(S, acct, k, name) ? 1 : 0;
    op_api->free(name);
    return rc;
}

/* Frees what only finding the pairs needs: the keys, their tables, the people's names. */
static void keys_free(scan_t *S)
{
    free(S->keys.p);
    S->keys = (arena_t){0};
    table_free(&S->emails);
    table_free(&S->phones);
    table_free(&S->names);
    free(S->named);
    S->named = NULL;
    S->nnamed = S->capnamed = 0;
}

/*
 * The groups of likely duplicates among the live records of @p entity (account, contact or
 * lead): [{"ids": [..], "reasons": ["email", "phone", "name"]}], ordered by their first id;
 * only the group of record @p only when it is > 0. NULL with @p err on failure.
 */
static json_t *scan(rapport_host *h, const char *entity, int64_t only, char *err, size_t errlen)
{
    scan_t S = {.h = h, .account = strcmp(entity, "account") == 0};
    bool account = S.account;
    people_t *P = &S.P;
    json_t *out = NULL;
    char *after = NULL;
    int fail = 0;
    /* A page at a time, each record handed over as the text of its fields (no JSON). */
    for (;;) {
        json_t *q = json_pack("{s:i,s:o}", "limit", PAGE, "fields",
                              json_loads(account ? scan_accounts : scan_people, 0, NULL));
        if (after)
            json_object_set_new(q, "after", json_string(after));
        op_api->free(after);
        after = NULL;
        char *qt = json_dumps(q, JSON_COMPACT);
        json_decref(q);
        int rc = qt ? op_api->find_rows(h, entity, qt, take, &S, &after) : 1;
        free(qt);
        if (rc > 0)
            goto oom;
        if (rc) {
            op_fail(err, errlen, "duplicates: %s", op_api->last_error(h));
            fail = 1;
            goto done;
        }
        if (!after)
            break;
    }
    int *parent = P->parent;
    unsigned char *why = P->why;
    if (!account) {
        /* Names one letter apart at the same account: sort by account, compare in buckets. */
        named_t *nd = S.named;
        int m = S.nnamed;
        if (m > 1)
            qsort(nd, (size_t)m, sizeof *nd, cmp_by_account);
        const char *kp = S.keys.p;
        for (int s = 0; s < m;) {
            int e = s;
            while (e < m && nd[e].account == nd[s].account)
                e++;
            if (e - s <= BUCKET_MAX)
                for (int x = s; x < e; x++)
                    for (int y = x + 1; y < e; y++)
                        if (one_apart(kp + nd[x].name, kp + nd[y].name))
                            join(parent, why, nd[x].rec, nd[y].rec, R_NAME);
            s = e;
        }
    }
    /* The keys are done with: the groups are built without them (a million records' keys would
     * otherwise stay beside the groups, at the scan's peak). */
    keys_free(&S);
    /* The groups, by their smallest member (the root: join keeps the smaller index). */
    out = json_array();
    json_t **groups = calloc((size_t)(P->n ? P->n : 1), sizeof *groups);
    int only_root = -1;
    for (int k = 0; k < P->n; k++)
        if (only > 0 && P->ids[k] == only)
            only_root = find_root(parent, k);
    for (int k = 0; k < P->n; k++) {
        int root = find_root(parent, k);
        if (root == k && !why[k])
            continue; /* alone */
        if (only > 0 && root != only_root)
            continue;
        if (!groups[root])
            groups[root] = json_array();
        json_array_append_new(groups[root], json_integer(P->ids[k]));
    }
    for (int k = 0; k < P->n; k++) {
        if (!groups[k])
            continue;
        if (json_array_size(groups[k]) < 2) {
            json_decref(groups[k]);
            continue;
        }
        json_t *reasons = json_array();
        if (why[k] & R_EMAIL)
            json_array_append_new(reasons, json_string(account ? "domain" : "email"));
        if (why[k] & R_PHONE)
            json_array_append_new(reasons, json_string("phone"));
        if (why[k] & R_NAME)
            json_array_append_new(reasons, json_string("name"));
        json_array_append_new(out, json_pack("{s:o,s:o}", "ids", groups[k], "reasons", reasons));
    }
    free(groups);
    goto done;
oom:
    op_fail(err, errlen, "duplicates: out of memory after %d %ss", P->n, entity);
    fail = 1;
done:
    keys_free(&S);
    free(P->ids);
    free(P->parent);
    free(P->why);
    op_api->free(after);
    return fail ? NULL : out;
}

/* ---- merging ---------------------------------------------------------------------------- */

static bool empty(json_t *v)
{
    return !v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v));
}

static const char *const bookkeeping[] = {"id",         "created_at",  "updated_at",
                                          "version",    "created_by",  "updated_by",
                                          "deleted_at", "merged_into", NULL};

static bool is_bookkeeping(const char *f)
{
    for (int i = 0; bookkeeping[i]; i++)
        if (strcmp(bookkeeping[i], f) == 0)
            return true;
    return false;
}

/* Points every reference to record @p from of @p entity at @p to; counts per "entity.field". */
static int repoint(rapport_host *h, json_t *schema, const char *entity, int64_t from, int64_t to,
                   json_t *counts, char *err, size_t errlen)
{
    const char *e, *f;
    json_t *desc, *spec;
    json_object_foreach(schema, e, desc)
    {
        json_object_foreach(json_object_get(desc, "fields"), f, spec)
        {
            if (!op_str(spec, "ref") || strcmp(op_str(spec, "ref"), entity) != 0 ||
                strcmp(f, "merged_into") == 0 ||
                (strcmp(e, "list_member") == 0 && strcmp(f, "contact") == 0))
                continue; /* memberships merge on their own (merge_memberships) */
            int n = 0;
            for (;;) {
                /* Each page is re-read from the start: the records updated no longer match. */
                /* Live records only: a deleted one keeps its reference as it was (the store
                 * refuses changes to a deleted record, and it is history). */
                json_t *q = json_pack("{s:{s:I},s:i,s:[s]}", "where", f, (json_int_t)from, "limit",
                                      1000, "fields", "id");
                char *qt = json_dumps(q, JSON_COMPACT);
                json_decref(q);
                json_t *page = op_json(op_api->find(h, e, qt));
                free(qt);
                json_t *data = json_object_get(page, "data"), *r;
                if (!page)
                    return op_fail(err, errlen, "merge: %s", op_api->last_error(h));
                if (json_array_size(data) == 0) {
                    json_decref(page);
                    break;
                }
                size_t i;
                json_array_foreach(data, i, r)
                {
                    char patch[128];
                    snprintf(patch, sizeof patch, "{\"%s\": %lld}", f, (long long)to);
                    if (op_api->update(h, e, json_integer_value(json_object_get(r, "id")), patch,
                                       0)) {
                        json_decref(page);
                        return op_fail(err, errlen, "merge: %s %lld: %s", e,
                                       (long long)json_integer_value(json_object_get(r, "id")),
                                       op_api->last_error(h));
                    }
                    n++;
                }
                json_decref(page);
            }
            if (n) {
                char key[160];
                snprintf(key, sizeof key, "%s.%s", e, f);
                json_object_set_new(
                    counts, key,
                    json_integer(json_integer_value(json_object_get(counts, key)) + n));
            }
        }
    }
    return 0;
}

/* The first page (up to 1000) of live @p entity records matching @p where (owned JSON). */
static json_t *live(rapport_host *h, const char *entity, json_t *where)
{
    json_t *q = json_pack("{s:O,s:i}", "where", where, "limit", 1000);
    char *qt = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    json_t *page = op_json(op_api->find(h, entity, qt));
    free(qt);
    json_t *data = json_incref(json_object_get(page, "data"));
    json_decref(page);
    return data ? data : json_array();
}

/* Contact @p from's list memberships become @p to's: moved where @p to is not on that list;
 * where it is, one membership stays, with the stricter consent (an opt-out on either holds),
 * and @p from's is deleted. */
static int merge_memberships(rapport_host *h, int64_t from, int64_t to, json_t *counts, char *err,
                             size_t errlen)
{
    int rc = 0, n = 0;
    /* A page at a time: each membership handled stops matching, so the next page is new. */
    for (;;) {
        json_t *w = json_pack("{s:I}", "contact", (json_int_t)from);
        json_t *mine = live(h, "list_member", w);
        json_decref(w);
        if (json_array_size(mine) == 0) {
            json_decref(mine);
            break;
        }
        size_t i;
        json_t *m;
        json_array_foreach(mine, i, m)
        {
            int64_t id = json_integer_value(json_object_get(m, "id"));
            json_t *w2 = json_pack("{s:I,s:O}", "contact", (json_int_t)to, "list",
                                   json_object_get(m, "list"));
            json_t *theirs = live(h, "list_member", w2);
            json_decref(w2);
            json_t *t = json_array_get(theirs, 0);
            char patch[256];
            if (!t) {
                snprintf(patch, sizeof patch, "{\"contact\": %lld}", (long long)to);
                rc = op_api->update(h, "list_member", id, patch, 0);
            } else {
                if (json_is_string(json_object_get(m, "opted_out_at")) &&
                    !json_is_string(json_object_get(t, "opted_out_at"))) {
                    json_t *p =
                        json_pack("{s:O,s:O}", "opted_out_at", json_object_get(m, "opted_out_at"),
                                  "opt_out_source", json_object_get(m, "opt_out_source"));
                    char *pt = json_dumps(p, JSON_COMPACT);
                    json_decref(p);
                    rc = op_api->update(h, "list_member",
                                        json_integer_value(json_object_get(t, "id")), pt, 0);
                    free(pt);
                }
                if (!rc)
                    rc = op_api->remove(h, "list_member", id);
            }
            json_decref(theirs);
            if (rc) {
                op_fail(err, errlen, "merge: list_member %lld: %s", (long long)id,
                        op_api->last_error(h));
                break;
            }
            n++;
        }
        json_decref(mine);
        if (rc)
            break;
    }
    if (n)
        json_object_set_new(counts, "list_member.contact", json_integer(n));
    return rc;
}

/* Activities about @p from (related_entity/related_id) come to @p to. */
static int merge_activities(rapport_host *h, const char *entity, int64_t from, int64_t to,
                            json_t *counts, char *err, size_t errlen)
{
    int n = 0;
    for (;;) {
        json_t *w =
            json_pack("{s:s,s:I}", "related_entity", entity, "related_id", (json_int_t)from);
        json_t *page = live(h, "activity", w);
        json_decref(w);
        if (json_array_size(page) == 0) {
            json_decref(page);
            break;
        }
        size_t i;
        json_t *a;
        json_array_foreach(page, i, a)
        {
            char patch[96];
            snprintf(patch, sizeof patch, "{\"related_id\": %lld}", (long long)to);
            if (op_api->update(h, "activity", json_integer_value(json_object_get(a, "id")), patch,
                               0)) {
                json_decref(page);
                return op_fail(err, errlen, "merge: activity: %s", op_api->last_error(h));
            }
            n++;
        }
        json_decref(page);
    }
    if (n)
        json_object_set_new(counts, "activity.related_id", json_integer(n));
    return 0;
}

/* The consent flags: true on any record merged holds for the one kept. */
static bool is_consent_flag(const char *f)
{
    return strcmp(f, "do_not_contact") == 0 || strcmp(f, "email_opt_out") == 0;
}

/*
 * Merges the records @p others of @p entity into @p keep, in one transaction. Returns the kept
 * record (owned) or NULL with @p err.
 */
static json_t *merge(rapport_host *h, const char *entity, int64_t keep, json_t *others, char *err,
                     size_t errlen)
{
    const rapport_api *api = op_api;
    if (!json_is_array(others) || json_array_size(others) == 0) {
        op_fail(err, errlen, "merge: name the records to merge into %lld", (long long)keep);
        return NULL;
    }
    json_t *kept = op_get(h, entity, keep), *schema = op_json(api->schema(h, NULL));
    json_t *patch = json_object(), *filled = json_object(), *counts = json_object();
    json_t *result = NULL;
    bool open = false;
    if (!kept || json_is_string(json_object_get(kept, "deleted_at"))) {
        op_fail(err, errlen, "merge: %s", kept ? "the record kept is deleted" : api->last_error(h));
        goto out;
    }
    if (!json_object_get(json_object_get(json_object_get(schema, entity), "fields"),
                         "merged_into")) {
        op_fail(err, errlen, "merge: %s has no merged_into field: records of it are not merged",
                entity);
        goto out;
    }
    if (api->begin(h)) {
        op_fail(err, errlen, "merge: %s", api->last_error(h));
        goto out;
    }
    open = true;
    size_t i;
    json_t *ov;
    json_array_foreach(others, i, ov)
    {
        int64_t other = json_integer_value(ov);
        if (!json_is_integer(ov) || other == keep) {
            op_fail(err, errlen, "merge: the records to merge must be ids other than %lld",
                    (long long)keep);
            goto out;
        }
        json_t *rec = op_get(h, entity, other);
        if (!rec || json_is_string(json_object_get(rec, "deleted_at"))) {
            op_fail(err, errlen, "merge: %s",
                    rec ? "a record to merge is deleted already" : api->last_error(h));
            json_decref(rec);
            goto out;
        }
        /* Empty fields of the kept record take the others' values, the first one's first. */
        const char *f;
        json_t *v;
        json_object_foreach(rec, f, v)
        {
            if (is_consent_flag(f) && json_is_true(v) && !json_is_true(json_object_get(kept, f)) &&
                !json_object_get(patch, f)) {
                json_object_set(patch, f, v); /* a "do not contact" is never lost */
                json_object_set_new(filled, f, json_integer(other));
                continue;
            }
            if (is_bookkeeping(f) || empty(v) || !empty(json_object_get(kept, f)) ||
                json_object_get(patch, f))
                continue;
            json_object_set(patch, f, v);
            json_object_set_new(filled, f, json_integer(other));
        }
        json_decref(rec);
        if (repoint(h, schema, entity, other, keep, counts, err, errlen) ||
            (strcmp(entity, "contact") == 0 &&
             merge_memberships(h, other, keep, counts, err, errlen)) ||
            merge_activities(h, entity, other, keep, counts, err, errlen))
            goto out;
        char mark[96];
        snprintf(mark, sizeof mark, "{\"merged_into\": %lld}", (long long)keep);
        if (api->update(h, entity, other, mark, 0) || api->remove(h, entity, other)) {
            op_fail(err, errlen, "merge: %s %lld: %s", entity, (long long)other,
                    api->last_error(h));
            goto out;
        }
    }
    if (json_object_size(patch)) {
        char *pt = json_dumps(patch, JSON_COMPACT);
        int rc = api->update(h, entity, keep, pt, 0);
        free(pt);
        if (rc) {
            op_fail(err, errlen, "merge: %s %lld: %s", entity, (long long)keep, api->last_error(h));
            goto out;
        }
    }
    json_t *ev = json_pack("{s:I,s:O,s:O,s:O}", "into", (json_int_t)keep, "merged", others,
                           "filled", filled, "repointed", counts);
    char *et = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    char type[96];
    snprintf(type, sizeof type, "%s.merged", entity);
    int rc = api->emit(h, type, entity, keep, et);
    free(et);
    if (rc || api->commit(h)) {
        op_fail(err, errlen, "merge: %s", api->last_error(h));
        goto out;
    }
    open = false;
    result = op_get(h, entity, keep);
out:
    if (open)
        api->rollback(h);
    json_decref(kept);
    json_decref(schema);
    json_decref(patch);
    json_decref(filled);
    json_decref(counts);
    return result;
}

/* ---- the doors -------------------------------------------------------------------------- */

static bool mergeable(const char *e)
{
    return e && (strcmp(e, "contact") == 0 || strcmp(e, "account") == 0 || strcmp(e, "lead") == 0);
}

static int set_result(const rapport_api *api, json_t *r, char **result)
{
    char *t = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    *result = api->strdup(t);
    free(t);
    return 0;
}

/* crm.operational.duplicates(entity [, id]) -> {{ids = {…}, reasons = {…}}, …} */
static int lua_duplicates(rapport_host *h, const rapport_api *api, const char *args, char **result,
                          void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    const char *e = json_string_value(json_array_get(a, 0));
    int64_t id = json_integer_value(json_array_get(a, 1));
    if (!mergeable(e)) {
        json_decref(a);
        return op_fail(err, errlen,
                       "duplicates(entity [, id]): entity is contact, account or "
                       "lead");
    }
    json_t *r = scan(h, e, id, err, errlen);
    json_decref(a);
    return r ? set_result(api, r, result) : RAPPORT_EINVAL;
}

/* crm.operational.merge(entity, keep_id, {other_id, …}) -> the kept record */
static int lua_merge(rapport_host *h, const rapport_api *api, const char *args, char **result,
                     void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    const char *e = json_string_value(json_array_get(a, 0));
    json_t *keep = json_array_get(a, 1), *others = json_array_get(a, 2);
    if (!mergeable(e) || !json_is_integer(keep)) {
        json_decref(a);
        return op_fail(err, errlen,
                       "merge(entity, keep_id, {other_id, …}): entity is contact, "
                       "account or lead");
    }
    json_t *r = merge(h, e, json_integer_value(keep), others, err, errlen);
    json_decref(a);
    return r ? set_result(api, r, result) : RAPPORT_EINVAL;
}

/* rapport duplicates ENTITY [--id N] */
static int cmd_duplicates(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    int64_t id = 0;
    const char *e = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
            char *end;
            id = strtoll(argv[++i], &end, 10);
            if (*end || id <= 0)
                e = ""; /* not a record id: the usage below */
        } else if (strcmp(argv[i], "--id") == 0)
            e = "";
        else if (!e)
            e = argv[i];
        else
            e = "";
    }
    if (!mergeable(e)) {
        fprintf(stderr, "usage: rapport duplicates contact|account|lead [--id N]\n");
        return 2;
    }
    char err[512];
    json_t *groups = scan(h, e, id, err, sizeof err);
    if (!groups) {
        fprintf(stderr, "rapport: %s\n", err);
        return 1;
    }
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        char *t = json_dumps(g, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    }
    fprintf(stderr, "rapport: %zu group(s) of likely duplicate %ss\n", json_array_size(groups), e);
    json_decref(groups);
    return 0;
}

/* rapport merge ENTITY KEEP_ID OTHER_ID… */
static int cmd_merge(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    char *end;
    int64_t keep = argc > 2 ? strtoll(argv[2], &end, 10) : 0;
    if (argc < 4 || !mergeable(argv[1]) || keep <= 0 || *end) {
        fprintf(stderr, "usage: rapport merge contact|account|lead KEEP_ID OTHER_ID…\n");
        return 2;
    }
    json_t *others = json_array();
    for (int i = 3; i < argc; i++) {
        int64_t o = strtoll(argv[i], &end, 10);
        if (o <= 0 || *end) {
            fprintf(stderr, "rapport: merge: \"%s\" is not a record id\n", argv[i]);
            json_decref(others);
            return 2;
        }
        json_array_append_new(others, json_integer(o));
    }
    char err[512];
    json_t *r = merge(h, argv[1], keep, others, err, sizeof err);
    json_decref(others);
    if (!r) {
        fprintf(stderr, "rapport: %s\n", err);
        return 1;
    }
    char *t = json_dumps(r, JSON_COMPACT);
    printf("%s\n", t);
    free(t);
    json_decref(r);
    return 0;
}

int op_people_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = op_api;
    if (api->lua_function(h, "duplicates", lua_duplicates, NULL) ||
        api->lua_function(h, "merge", lua_merge, NULL) ||
        api->command(h, "duplicates",
                     "likely duplicates: duplicates contact|account|lead "
                     "[--id N]",
                     cmd_duplicates, NULL) ||
        api->command(h, "merge",
                     "merge records into one: merge contact|account|lead KEEP_ID "
                     "OTHER_ID…",
                     cmd_merge, NULL))
        return op_fail(err, errlen, "%s", api->last_error(h));
    return 0;
}
