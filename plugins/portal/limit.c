/*
 * limit.c — the portal's attempt limiter: how many sign-ins or link requests a client address
 * or an email address made in the current window, in a small table of the process (the
 * engine's own limiter counts only its token sign-ins, and is not reachable from a plugin).
 */
#include <string.h>

#include "portal.h"

/* A fixed table: when it is full the oldest window gives way, so flooding it with keys frees
 * a key's count no sooner than its window would have. Touched on the loop only. */
enum { SLOTS = 1024, PROBE = 16, KEY_MAX = 160 };

typedef struct {
    char key[KEY_MAX];
    int count;
    int64_t start_ms;
} slot_t;

static slot_t slots[SLOTS];

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of @p key, or NULL; with @p make, a free or the oldest slot made its own. */
static slot_t *find(const char *key, bool make)
{
    uint32_t at = hash(key);
    slot_t *oldest = NULL;
    for (int i = 0; i < PROBE; i++) {
        slot_t *s = &slots[(at + (uint32_t)i) % SLOTS];
        if (s->key[0] && strncmp(s->key, key, KEY_MAX - 1) == 0)
            return s;
        if (!oldest || !s->key[0] || (oldest->key[0] && s->start_ms < oldest->start_ms))
            oldest = s;
    }
    if (!make)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    strncpy(oldest->key, key, KEY_MAX - 1);
    return oldest;
}

bool pt_limited(const char *key, int max, int64_t window_ms, int64_t now_ms)
{
    slot_t *s = find(key, false);
    return s && now_ms - s->start_ms < window_ms && s->count >= max;
}

void pt_count(const char *key, int64_t window_ms, int64_t now_ms)
{
    slot_t *s = find(key, true);
    if (s->count == 0 || now_ms - s->start_ms >= window_ms) {
        s->count = 0;
        s->start_ms = now_ms;
    }
    s->count++;
}

void pt_forget(const char *key)
{
    slot_t *s = find(key, false);
    if (s)
        memset(s, 0, sizeof *s);
}

void pt_uncount(const char *key)
{
    slot_t *s = find(key, false);
    if (s && s->count > 0)
        s->count--;
}
