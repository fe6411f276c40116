/*
 * limit.c — the portal's attempt limiter: how many sign-ins or link requests a client address
 * or an email address made in the current window, in a small table of the process (the
 * engine's own limiter counts only its token sign-ins, and is not reachable from a plugin).
 */
#include <string.h>

#include "portal.h"

/* A fixed table: when a key's neighbourhood is full, a slot whose window is over gives way,
 * else the one with the fewest attempts (the oldest of those): a flood of new keys, one attempt each, pushes out its own keys
 * before a count near its limit, which an attacker would otherwise reset at will by asking
 * links for addresses that hash next to a customer's. Touched on the loop only. */
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

/* How many attempts slot @p s holds at @p now_ms: none when free or its window is over. */
static int held(const slot_t *s, int64_t window_ms, int64_t now_ms)
{
    return s->key[0] && now_ms - s->start_ms < window_ms ? s->count : 0;
}

/* The slot of @p key, or NULL; with @p make, the slot of its neighbourhood holding the fewest
 * attempts in the window (a free or spent one first; then the oldest), made its own. */
static slot_t *find(const char *key, bool make, int64_t window_ms, int64_t now_ms)
{
    uint32_t at = hash(key);
    slot_t *victim = NULL;
    for (int i = 0; i < PROBE; i++) {
        slot_t *s = &slots[(at + (uint32_t)i) % SLOTS];
        if (s->key[0] && strncmp(s->key, key, KEY_MAX - 1) == 0)
            return s;
        int n = held(s, window_ms, now_ms), v = victim ? held(victim, window_ms, now_ms) : 0;
        if (!victim || n < v || (n == v && s->start_ms < victim->start_ms))
            victim = s;
    }
    if (!make)
        return NULL;
    memset(victim, 0, sizeof *victim);
    strncpy(victim->key, key, KEY_MAX - 1);
    return victim;
}

bool pt_limited(const char *key, int max, int64_t window_ms, int64_t now_ms)
{
    slot_t *s = find(key, false, window_ms, now_ms);
    return s && now_ms - s->start_ms < window_ms && s->count >= max;
}

void pt_count(const char *key, int64_t window_ms, int64_t now_ms)
{
    slot_t *s = find(key, true, window_ms, now_ms);
    if (s->count == 0 || now_ms - s->start_ms >= window_ms) {
        s->count = 0;
        s->start_ms = now_ms;
    }
    s->count++;
}

void pt_forget(const char *key)
{
    slot_t *s = find(key, false, 0, 0);
    if (s)
        memset(s, 0, sizeof *s);
}

void pt_uncount(const char *key)
{
    slot_t *s = find(key, false, 0, 0);
    if (s && s->count > 0)
        s->count--;
}
