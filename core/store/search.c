/*
 * search.c — full-text search: free text turned into a safe FTS5 query within the published
 * caps, ranked by the index; and search for a user, who finds only what their role may read,
 * ranked on what they may see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rapport/text.h"

#define RP__RANK_WINDOW 256 /* Matches ranked by search, newest first (see rp_store_search). */

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether the word [w, w+n) occurs as a whole word in [text, end). */
static bool word_before(const char *text, const char *end, const char *w, size_t n)
{
    for (const char *p = text; p + n <= end; p++)
        if ((p == text || blank(p[-1])) && memcmp(p, w, n) == 0 && (p + n == end || blank(p[n])))
            return true;
    return false;
}

/* Turns free text into an FTS5 query: every word quoted (so no FTS syntax is taken from the
 * user) and matched as a prefix; all words must match. A word given twice counts once, and a
 * word of one character matches whole words only: as a prefix it would make the index walk
 * every term that starts with that letter (measured: 32 × "s" held a request 200 ms). */
static char *match_expr(const char *text)
{
    /* Worst case: every byte a quote (doubled) or a one-letter word (quotes, star, space). */
    size_t n = strlen(text);
    char *out = malloc(n * 4 + 8), *o = out;
    if (!out)
        return NULL;
    const char *p = text;
    bool any = false;
    while (*p) {
        while (blank(*p))
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && !blank(*p))
            p++;
        size_t wn = (size_t)(p - w), chars = 0;
        if (word_before(text, w, w, wn))
            continue;
        for (size_t i = 0; i < wn; i++)
            chars += ((unsigned char)w[i] & 0xc0) != 0x80;
        if (any)
            *o++ = ' ';
        *o++ = '"';
        for (size_t i = 0; i < wn; i++) {
            if (w[i] == '"')
                *o++ = '"';
            *o++ = w[i];
        }
        *o++ = '"';
        if (chars > 1)
            *o++ = '*';
        any = true;
    }
    *o = '\0';
    if (!any) {
        free(out);
        return NULL;
    }
    return out;
}

static bool word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RP_ELIMIT for a text over the published caps. Words are counted as the index sees them
 * (runs of letters and digits), so "a.a.a.a…", one word to the eye, counts each "a". */
static int search_cap(const char *text, rp_error_t *err)
{
    size_t n = text ? strlen(text) : 0, words = 0;
    if (n > RP_SEARCH_MAX_BYTES)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "the search text is %zu bytes long; the "
                            "limit is %d", n, RP_SEARCH_MAX_BYTES);
    for (size_t i = 0; i < n; i++)
        if (word_byte((unsigned char)text[i]) && (i == 0 || !word_byte((unsigned char)text[i - 1])))
            words++;
    if (words > RP_SEARCH_MAX_WORDS)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "the search text has %zu words; the limit "
                            "is %d", words, RP_SEARCH_MAX_WORDS);
    return 0;
}

static int search_run(rp_store_t *s, const char *text, const char *entity, int limit,
                      bool newest, int snip, json_t **out, rp_error_t *err);
static int add_snippets(rp_store_t *s, const char *text, json_t *hits, rp_error_t *err);

int rp_store_search(rp_store_t *s, const char *text, const char *entity, int limit, json_t **out,
                    rp_error_t *err)
{
    int rc = search_run(s, text, entity, limit, false, limit, out, err);
    if (rc == 0 && (rc = add_snippets(s, text, *out, err)) != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* One match: its index row, rank, and snippet if it was made. */
typedef struct {
    int64_t rowid;
    double rank;
    char *snip;
} match_t;

/* Best first: lower rank, then the newer record. */
static int by_match(const void *x, const void *y)
{
    const match_t *a = x, *b = y;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->rowid > b->rowid ? -1 : a->rowid < b->rowid;
}

/* The name of the entity whose index rows hold @p rowid, NULL for none. */
static const char *rowid_entity(rp_store_t *s, int64_t rowid)
{
    int64_t no = rowid >> RP__FTS_SHIFT;
    for (int i = 0; i < s->nents; i++)
        if (s->ents[i]->no == no)
            return s->ents[i]->name;
    return NULL;
}

/* The search itself: ranked, or with @p newest the newest matches unranked (for a reader whose
 * ranks are made from what they see, so that the index's, which weigh hidden text, decide
 * nothing). The first @p snip hits (ranked only) come with their snippets, made in the same
 * pass; add_snippets gives the others theirs, once the caller knows which it keeps. */
static int search_run(rp_store_t *s, const char *text, const char *entity, int limit,
                      bool newest, int snip, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp__entity_t *only = NULL;
    if (entity && !(only = rp__entity_req(s, entity, err)))
        return err ? err->code : RP_EIO;
    int rc = search_cap(text, err);
    if (rc)
        return rc;
    char *expr = text ? match_expr(text) : NULL;
    if (!expr)
        return rp_error_set(err, RP_EINVAL, RP_C_SEARCH, "search needs at least one word");
    if (limit <= 0)
        limit = 20;
    if (limit > 1000)
        limit = 1000;
    if (snip <= 0 || snip > limit)
        snip = limit;
    /* The index answers for the transaction's own writes too. */
    if ((rc = rp__fts_flush(s, err))) {
        free(expr);
        return rc;
    }
    /* Ranking costs about a microsecond a match, and a short prefix over a million records
     * matches tens of thousands: rank only the newest RANK_WINDOW matches (or `limit`, if
     * more), read newest first in one pass with each one's length joined in for rp_bm25 (CROSS
     * JOIN keeps the index outside, whatever statistics say). Within one entity rowids follow
     * record ids, so "newest" is the latest created. A snippet is made only for a row that can
     * still be among the first `snip` (rp_topk): a second pass for them would read the words'
     * index entries again, which for a long prefix of a common word is the whole cost. */
    int window = newest ? limit : limit > RP__RANK_WINDOW ? limit : RP__RANK_WINDOW;
    const char *sql =
        newest && only ? "SELECT rowid, 0.0 FROM rp_search WHERE rp_search MATCH ?1"
                         " AND rowid BETWEEN ?3 AND ?4 ORDER BY rowid DESC LIMIT ?2"
        : newest ? "SELECT rowid, 0.0 FROM rp_search WHERE rp_search MATCH ?1"
                   " ORDER BY rowid DESC LIMIT ?2"
        : only ? "SELECT f.rowid, rp_bm25(rp_search, d.sz), CASE WHEN rp_topk(rp_bm25(rp_search,"
                 " d.sz), f.rowid, ?5) THEN snippet(rp_search, 0, '[', ']', '…', 12) END"
                 " FROM rp_search f CROSS JOIN rp_search_docsize d ON d.id = f.rowid"
                 " WHERE rp_search MATCH ?1 AND f.rowid BETWEEN ?3 AND ?4"
                 " ORDER BY f.rowid DESC LIMIT ?2"
               : "SELECT f.rowid, rp_bm25(rp_search, d.sz), CASE WHEN rp_topk(rp_bm25(rp_search,"
                 " d.sz), f.rowid, ?5) THEN snippet(rp_search, 0, '[', ']', '…', 12) END"
                 " FROM rp_search f CROSS JOIN rp_search_docsize d ON d.id = f.rowid"
                 " WHERE rp_search MATCH ?1 ORDER BY f.rowid DESC LIMIT ?2";
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    match_t *m = st ? malloc(sizeof *m * (size_t)window) : NULL;
    if (!m) {
        free(expr);
        if (st)
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        return err ? err->code : RP_EIO;
    }
    rp_db_bind_text_owned(st, 1, expr, -1);
    rp_db_bind_int(st, 2, window);
    if (!newest)
        rp_db_bind_int(st, 5, snip);
    if (only) {
        rp_db_bind_int(st, 3, only->no << RP__FTS_SHIFT);
        rp_db_bind_int(st, 4, ((only->no + 1) << RP__FTS_SHIFT) - 1);
    }
    int n = 0;
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    while ((rc = rp_db_step(st)) == RP_DB_ROW && n < window) {
        const char *sn = newest ? NULL : rp_db_col_text(st, 2);
        m[n++] = (match_t){rp_db_col_int(st, 0), rp_db_col_float(st, 1), sn ? strdup(sn) : NULL};
    }
    rp__reading(s, was_reading);
    rp_db_reset(st);
    if (rc != RP_DB_DONE && rc != RP_DB_ROW) {
        for (int i = 0; i < n; i++)
            free(m[i].snip);
        free(m);
        return rp__dberr(s, rc, "search failed", err);
    }
    if (!newest)
        qsort(m, (size_t)n, sizeof *m, by_match);
    json_t *hits = json_array();
    for (int i = 0; i < n && (int)json_array_size(hits) < limit; i++) {
        const char *ename = rowid_entity(s, m[i].rowid);
        if (!ename)
            continue;
        json_t *h = json_pack("{s:s,s:I,s:f}", "entity", ename, "id",
                              (json_int_t)(m[i].rowid & ((INT64_C(1) << RP__FTS_SHIFT) - 1)),
                              "rank", m[i].rank);
        if (h && m[i].snip)
            json_object_set_new(h, "snippet", json_string(m[i].snip));
        json_array_append_new(hits, h);
    }
    for (int i = 0; i < n; i++)
        free(m[i].snip);
    free(m);
    *out = hits;
    return 0;
}

/* Gives every hit of @p hits without a "snippet" the index's: the matching words of its text
 * in brackets. These are the hits search_run made none for: a restricted reader's, kept past
 * the first `snip` or ranked again. One pass over the index rows from the newest hit to the
 * oldest (a query of its own per hit would read the words' index entries again each time). */
static int add_snippets(rp_store_t *s, const char *text, json_t *hits, rp_error_t *err)
{
    json_t *rowids = json_array();
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h) {
        if (json_object_get(h, "snippet"))
            continue;
        rp__entity_t *e = rp__entity_req(s, json_string_value(json_object_get(h, "entity")), NULL);
        if (!e)
            continue;
        int64_t rowid = (e->no << RP__FTS_SHIFT) | json_integer_value(json_object_get(h, "id"));
        json_array_append_new(rowids, json_integer(rowid));
        lo = rowid < lo ? rowid : lo;
        hi = rowid > hi ? rowid : hi;
    }
    bool any = json_array_size(rowids) > 0;
    if (any && rp__fts_flush(s, err)) {
        json_decref(rowids);
        return err ? err->code : RP_EIO;
    }
    char *expr = any ? match_expr(text) : NULL;
    char *list = expr ? json_dumps(rowids, JSON_COMPACT) : NULL;
    json_decref(rowids);
    int rc = 0;
    if (any && !list) {
        /* search_run took the text, so match_expr can only have run out of memory. */
        free(expr);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    if (any) {
        /* "+rowid": the list filters the rows the range gives, and is not offered to FTS5,
         * which would run the whole query again for every one of its values. Newest first:
         * the hits are at the newest end, which FTS5 reaches without walking the rest (35 µs
         * against 115 µs for a prefix of two letters over 100,000 contacts). */
        rp_db_stmt_t *st = rp__stmt(
            s,
            "SELECT rowid, snippet(rp_search, 0, '[', ']', '…', 12) FROM rp_search"
            " WHERE rp_search MATCH ?1 AND rowid BETWEEN ?2 AND ?3"
            " AND +rowid IN (SELECT value FROM json_each(?4)) ORDER BY rowid DESC",
            err);
        if (!st) {
            free(expr);
            free(list);
            return err ? err->code : RP_EIO;
        }
        rp_db_bind_text_owned(st, 1, expr, -1);
        rp_db_bind_int(st, 2, lo);
        rp_db_bind_int(st, 3, hi);
        rp_db_bind_text_owned(st, 4, list, -1);
        expr = list = NULL;
        rp_db_stmt_t *was_reading = rp__reading(s, st);
        while ((rc = rp_db_step(st)) == RP_DB_ROW) {
            int64_t rowid = rp_db_col_int(st, 0);
            const char *en = rowid_entity(s, rowid);
            json_int_t id = (json_int_t)(rowid & ((INT64_C(1) << RP__FTS_SHIFT) - 1));
            json_array_foreach(hits, i, h)
                if (!json_object_get(h, "snippet") && en &&
                    json_integer_value(json_object_get(h, "id")) == id &&
                    strcmp(json_string_value(json_object_get(h, "entity")), en) == 0)
                    json_object_set_new(h, "snippet", json_string(rp_db_col_text(st, 1)));
        }
        rp__reading(s, was_reading);
        rp_db_reset(st);
        rc = rc == RP_DB_DONE ? 0 : rp__dberr(s, rc, "search failed", err);
    }
    free(expr);
    free(list);
    /* A hit the pass did not meet (not expected) still has the field. */
    json_array_foreach(hits, i, h)
        if (!json_object_get(h, "snippet"))
            json_object_set_new(h, "snippet", json_string(""));
    return rc;
}

/* Whether every token of folded @p word starts some token of folded @p text. */
static bool word_in(const char *word, const char *text)
{
    const char *w = word;
    while (*w) {
        while (*w && !word_byte((unsigned char)*w))
            w++;
        size_t n = 0;
        while (word_byte((unsigned char)w[n]))
            n++;
        if (!n)
            break;
        bool found = false;
        for (const char *t = text; *t && !found;) {
            while (*t && !word_byte((unsigned char)*t))
                t++;
            size_t m = 0;
            while (word_byte((unsigned char)t[m]))
                m++;
            found = m >= n && memcmp(t, w, n) == 0;
            t += m;
        }
        if (!found)
            return false;
        w += n;
    }
    return true;
}

/* The text of @p rec's searchable fields not hidden from @p a, joined by " · ". */
static char *visible_text(rp__entity_t *e, const rp_access_t *a, json_t *rec)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (int i = 0; i < e->nfields; i++) {
        if (!e->fields[i].searchable || rp__access_hidden(a, e->name, e->fields[i].name))
            continue;
        char buf[64];
        const char *t = rp__value_text(json_object_get(rec, e->fields[i].name), buf, sizeof buf);
        if (!t || !*t)
            continue;
        size_t n = strlen(t);
        if (len + n + 8 > cap) {
            while (len + n + 8 > cap)
                cap *= 2;
            char *nb = realloc(out, cap);
            if (!nb) {
                free(out);
                return NULL;
            }
            out = nb;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " · " : "", t);
    }
    return out;
}

/* Whether @p a hides a searchable field of any entity: then the index's ranks, which weigh
 * every word of a record and of the whole collection, would tell the reader something of
 * what is hidden (whether a hidden field holds a word, roughly how long it is). */
static bool hides_searchable(rp_store_t *s, const rp_access_t *a)
{
    for (int i = 0; i < s->nents; i++)
        for (int f = 0; f < s->ents[i]->nfields; f++)
            if (s->ents[i]->fields[f].searchable &&
                rp__access_hidden(a, s->ents[i]->name, s->ents[i]->fields[f].name))
                return true;
    return false;
}

/* Whether @p a reads every record of every entity searched (only @p entity when not NULL) with
 * nothing hidden: then every match is a hit, and a search asks for no more than it returns. */
static bool sees_all(rp_store_t *s, const rp_access_t *a, const char *entity)
{
    for (int i = 0; i < s->nents; i++) {
        rp__entity_t *e = s->ents[i];
        if (entity && strcmp(e->name, entity) != 0)
            continue;
        if (rp__access_scope(a, e->name, RP_PERM_READ) != RP_SCOPE_ALL)
            return false;
        for (int f = 0; f < e->nfields; f++)
            if (e->fields[f].searchable && rp__access_hidden(a, e->name, e->fields[f].name))
                return false;
    }
    return true;
}

/* The length of the token at @p t (a run of letters and digits), 0 at none. */
static size_t token_len(const char *t)
{
    size_t n = 0;
    while (word_byte((unsigned char)t[n]))
        n++;
    return n;
}

/* BM25 (k1 1.2, b 0.75, as FTS5) of folded text @p doc for the folded query @p words, each
 * word matching the tokens it starts; *dl receives the text's length in tokens. Every word
 * of the query matches every hit, so the words weigh alike (no collection statistics, which
 * would count hidden text). */
static double visible_score(const char *words, const char *doc, double avgdl, int *dl)
{
    int len = 0;
    for (const char *t = doc; *t;) {
        size_t m = token_len(t);
        if (m) {
            len++;
            t += m;
        } else {
            t++;
        }
    }
    *dl = len;
    if (avgdl <= 0)
        return 0;
    double score = 0;
    for (const char *w = words; *w;) {
        size_t n = token_len(w);
        if (!n) {
            w++;
            continue;
        }
        /* A word of one character matches whole words, as the index's query has it. */
        size_t chars = 0;
        for (size_t i = 0; i < n; i++)
            chars += ((unsigned char)w[i] & 0xc0) != 0x80;
        int tf = 0;
        for (const char *t = doc; *t;) {
            size_t m = token_len(t);
            if (!m) {
                t++;
                continue;
            }
            tf += (chars > 1 ? m >= n : m == n) && memcmp(t, w, n) == 0;
            t += m;
        }
        score += tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avgdl));
        w += n;
    }
    return score;
}

typedef struct {
    json_t *hit;
    double rank;
    size_t order;
} ranked_t;

static int by_rank(const void *x, const void *y)
{
    const ranked_t *a = x, *b = y;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Ranks the hits of @p res again on what the reader sees (their "_visible" text, taken out):
 * rank is minus the score, lower first, as the index's own. */
static void rank_visible(json_t *res, const char *text)
{
    size_t n = json_array_size(res), i;
    char *words = rp_text_fold(text, strlen(text), NULL);
    ranked_t *r = calloc(n ? n : 1, sizeof *r);
    char **docs = calloc(n ? n : 1, sizeof *docs);
    if (!words || !r || !docs)
        goto out;
    double total = 0;
    int dl;
    json_t *h;
    json_array_foreach(res, i, h) {
        const char *v = json_string_value(json_object_get(h, "_visible"));
        docs[i] = rp_text_fold(v ? v : "", v ? strlen(v) : 0, NULL);
        visible_score("", docs[i] ? docs[i] : "", 1, &dl);
        total += dl;
    }
    double avgdl = n ? total / (double)n : 1;
    json_array_foreach(res, i, h) {
        r[i].hit = json_incref(h);
        r[i].order = i;
        r[i].rank = -visible_score(words, docs[i] ? docs[i] : "", avgdl > 0 ? avgdl : 1, &dl);
        json_object_del(h, "_visible");
        json_object_set_new(h, "rank", json_real(r[i].rank));
    }
    qsort(r, n, sizeof *r, by_rank);
    json_array_clear(res);
    for (i = 0; i < n; i++)
        json_array_append_new(res, r[i].hit);
out:
    for (i = 0; docs && i < n; i++)
        free(docs[i]);
    free(docs);
    free(r);
    free(words);
}

int rp_store_search_as(rp_store_t *s, const rp_access_t *a, const char *text, const char *entity,
                       int limit, json_t **out, rp_error_t *err)
{
    if (!a)
        return rp_store_search(s, text, entity, limit, out, err);
    *out = NULL;
    if (entity) {
        rp__entity_t *e = rp__entity_req(s, entity, err);
        if (!e)
            return err ? err->code : RP_EIO;
        if (rp__access_scope(a, entity, RP_PERM_READ) == RP_SCOPE_NONE)
            return rp__access_denied(err, a, entity, RP_PERM_READ, NULL);
    }
    if (limit <= 0)
        limit = 20;
    if (limit > 1000)
        limit = 1000;
    /* Ask for more than wanted: some matches are not the user's to see; when too few of
     * them are, ask again for four times as many, up to the search's own ceiling. */
    json_t *hits = NULL, *res = NULL;
    char *words = NULL;
    size_t flen;
    bool vis_rank = hides_searchable(s, a);
    int want = sees_all(s, a, entity) ? limit : limit * 4 > 1000 ? 1000 : limit * 4;
    for (;;) {
        json_decref(hits);
        json_decref(res);
        free(words);
        hits = NULL;
        int rc = search_run(s, text, entity, want, vis_rank, limit, &hits, err);
        if (rc)
            return rc;
        words = rp_text_fold(text, strlen(text), &flen);
        res = json_array();
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h) {
            /* Ranked on what the reader sees: every candidate first, the cut after. */
            if (!vis_rank && (int)json_array_size(res) >= limit)
                break;
            if (i % 32 == 31 && (rc = rp__over_budget(s, err))) {
                free(words);
                json_decref(hits);
                json_decref(res);
                return rc;
            }
            const char *en = json_string_value(json_object_get(h, "entity"));
            int64_t id = json_integer_value(json_object_get(h, "id"));
            rp__entity_t *e = rp__entity_req(s, en, NULL);
            rp_scope_t sc = e ? rp__access_scope(a, en, RP_PERM_READ) : RP_SCOPE_NONE;
            if (sc == RP_SCOPE_NONE)
                continue;
            bool hides = false;
            for (int f = 0; f < e->nfields && !hides; f++)
                hides = e->fields[f].searchable && rp__access_hidden(a, en, e->fields[f].name);
            if (sc == RP_SCOPE_ALL && !hides && !vis_rank) {
                json_array_append(res, h);
                continue;
            }
            json_t *rec = NULL;
            if (rp_store_get(s, en, id, &rec, NULL))
                continue;
            bool keep = rp__access_in_scope(s, a, en, sc, rec);
            char *vis = keep && (hides || vis_rank) ? visible_text(e, a, rec) : NULL;
            if (hides) {
                /* Matched through a hidden field only: not a match for this user. */
                char *fv = vis ? rp_text_fold(vis, strlen(vis), NULL) : NULL;
                bool all = fv && words;
                for (char *save = NULL, *w = all ? strtok_r(words, " \t\r\n", &save) : NULL; w;
                     w = strtok_r(NULL, " \t\r\n", &save))
                    all = all && word_in(w, fv);
                free(fv);
                /* strtok_r cut words: fold it again for the next record. */
                free(words);
                words = rp_text_fold(text, strlen(text), &flen);
                keep = keep && all;
            }
            if (keep) {
                json_t *hit = json_copy(h);
                if (hides)
                    json_object_set_new(hit, "snippet", json_string(vis ? vis : ""));
                if (vis_rank)
                    json_object_set_new(hit, "_visible", json_string(vis ? vis : ""));
                json_array_append_new(res, hit);
            }
            free(vis);
            json_decref(rec);
        }
        if ((int)json_array_size(res) >= limit || (int)json_array_size(hits) < want ||
            want >= 1000)
            break;
        want = want * 4 > 1000 ? 1000 : want * 4;
    }
    free(words);
    json_decref(hits);
    if (vis_rank) {
        rank_visible(res, text);
        while ((int)json_array_size(res) > limit)
            json_array_remove(res, json_array_size(res) - 1);
    }
    /* Snippets for the hits kept only: each costs a read of the record's text. */
    int rc = add_snippets(s, text, res, err);
    if (rc) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}
