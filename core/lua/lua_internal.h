/*
 * lua_internal.h — what the Lua room's files share: the state with its limits, the value
 * conversions and the registrations a script makes.
 */
#ifndef RAPPORT_LUA_INTERNAL_H
#define RAPPORT_LUA_INTERNAL_H

#include <lua.h>

#include "rapport/log.h"
#include "rapport/lua.h"

/** What a registration is. */
typedef enum { REG_HOOK, REG_SUB, REG_JOB, REG_EVERY } reg_kind_t;

/** One registration a script made: kept until the state goes, so C callbacks can reach it. */
typedef struct rp__reg {
    struct rp__reg *next;
    struct rp_lua *l;
    reg_kind_t kind;
    int fnref;          /* LUA_REGISTRYINDEX reference to the Lua function. */
    char name[160];     /* hook: entity; sub: subscriber; job: job name; every: schedule. */
    char types[96];     /* sub: type glob; every: cron expression. */
    char extra[96];     /* every: job name; hook: "*" or entity. */
    char tz[64];        /* every: zone. */
    json_t *payload;    /* every: payload. */
    rp_action_t action; /* hook */
    int priority;       /* hook */
    int nargs;          /* How many arguments the function can see (all, if a vararg). */
    bool from_now;      /* sub */
    bool applied;
} rp__reg_t;

enum { RP__TRIP_INSTRUCTIONS = 1, RP__TRIP_WALL, RP__TRIP_CPU, RP__TRIP_MEMORY };

/** The ticker's signal: SIGRTMIN + this. */
#define RP_LUA_TICK_SIGNAL 4

struct rp_lua {
    lua_State *L;
    rp_store_t *s;
    rp_sched_t *e;
    rp_lua_opts_t o;
    char name[128], actor[160], owner[176];
    rp_ctx_t ctx;          /* The context the crm API writes with (a handler's while it runs). */
    size_t mem_used;
    bool mem_hit, limits_on;
    bool refused;          /* The allocator just said no once: Lua collects and asks again. */
    int64_t instructions, deadline;
    bool deadline_inherited; /* The deadline is the caller's budget, not the wall limit. */
    int64_t budget_ms;     /* What was left of that budget when the call started. */
    int tripped;           /* The limit that stopped the running call (RP__TRIP_*), or 0. */
    char trip_msg[512];    /* Its message, raised again wherever the call goes on. */
    bool exact;            /* An exact instruction budget: a count hook on every call. */
    bool ticked;           /* Holds a reference on this thread's ticker. */
    volatile int ticks;    /* CPU ticks of the ticker during the running call. */
    lua_State *cur;        /* The Lua thread running (a coroutine while it runs). */
    struct rp_lua *tick_prev; /* The sandboxed call this one runs inside, or NULL. */
    int depth;             /* Nesting of calls into Lua. */
    unsigned c_steps;      /* Values converted to JSON, for the limits' look every 4096. */
    size_t c_text;         /* Bytes of text converted to JSON since crm.json.encode began. */
    rp__reg_t *regs;       /* Applied registrations. */
    rp__reg_t *pending;    /* Made by the chunk that is running. */
    int pending_depth;
    rp_log_fn log;
    void *log_ud;
};

rp_lua_t *rp__lua_of(lua_State *L);
int rp__lua_pcall(rp_lua_t *l, int nargs, int nres, rp_error_t *err);
json_t *rp__lua_to_json(lua_State *L, int idx, const char **why);
/** Sets @p key (@p klen bytes, from Lua) of @p obj to @p v (stolen, released on failure);
 *  refuses a key with a NUL byte or not UTF-8, saying so in *why. A @p known key (one
 *  already in a JSON object) skips the UTF-8 check. */
int rp__lua_json_set(json_t *obj, const char *key, size_t klen, json_t *v, bool known,
                     const char **why);
void rp__lua_push_json(lua_State *L, json_t *j);
json_t *rp__lua_check_json(lua_State *L, int idx, const char *fname, const char *what);
void rp__lua_log(rp_lua_t *l, const char *level, const char *msg);
void rp_lua_fmt_now(rp_lua_t *l, char out[32]);
void rp_lua_set_log(rp_lua_t *l, rp_log_fn log, void *ud);
int rp__lua_open_crm(rp_lua_t *l, rp_error_t *err);
void rp__lua_pending_begin(rp_lua_t *l);
void rp__lua_pending_discard(rp_lua_t *l);
int rp__lua_pending_apply(rp_lua_t *l, rp_error_t *err);
void rp__lua_unregister_all(rp_lua_t *l);
extern const char *const rp__lua_sandbox_globals[];
/** From C code that runs long inside one call (pattern matching): counts @p steps against an
 *  exact instruction budget and stops the running call, as the hook would, when it is over one
 *  of its limits. Raises a Lua error; holds no resources of the caller's. */
void rp__lua_check_limits(lua_State *L, unsigned steps);
/** As rp__lua_check_limits(), without raising: true (the stop's message set and made to stick)
 *  when the running call is over a limit, for C code that must free what it holds first. */
bool rp__lua_limits_hit(lua_State *L, unsigned steps);
/** The largest text crm.json.decode takes or crm.json.encode writes: one C call each, kept
 *  to tens of milliseconds (RP_LUA_MAX_CHUNK, the largest chunk, is in rapport/lua.h). */
#define RP_LUA_MAX_JSON (1 << 20)
/** The text (keys and strings) one value handed to the engine may hold: a record, an event's
 *  payload, a setting (8 MiB: eight times the largest body the API takes). */
#define RP_LUA_MAX_VALUE (8 << 20)
/** Raises the stop's message when a limit tripped during a C call (a store read stopped at the
 *  budget), so the script sees the limit rather than the store's failure. */
void rp__lua_raise_if_tripped(lua_State *L);
/** Raises @p err as a Lua error (a limit that tripped first wins); does not return. */
int rp__lua_raise(lua_State *L, rp_error_t *err);
/** Pushes a fresh JSON value to Lua and drops the reference. */
void rp__lua_push_owned(lua_State *L, json_t *j);
/** Adds crm.before, on, emit, job, after, every and cancel to the table on top of the stack. */
void rp__lua_open_rules(lua_State *L);
/** Adds crm.erase and crm.subject to the table on top of the stack (erase.c). */
void rp__lua_open_erase(lua_State *L);
/** Adds crm.schema.declare, migration, rename_field, change_type, drop_field and drop_entity
 *  to the table on top of the stack (schema.c). */
void rp__lua_open_schema(lua_State *L);
/** Puts the budget-aware string.find, match, gmatch and gsub in place of Lua's own. */
void rp__lua_open_strmatch(lua_State *L);
/** Counts the line event @p ar (of thread @p L) into @p c, when it is a script file's line. */
void rp__lua_cov_line(rp_lua_cov_t *c, lua_State *L, lua_Debug *ar);
/** crm.null's light userdata: a JSON null in tables, where nil would mean "absent". */
extern void *const rp__lua_null;

#endif
