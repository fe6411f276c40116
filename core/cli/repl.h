/*
 * repl.h — the REPL (repl.c), its commands (repl_cmd.c), the paging of crm.find results
 * (repl_page.c), its printing (repl_show.c) and how wide text is on a terminal (repl_width.c).
 */
#ifndef RAPPORT_CLI_REPL_H
#define RAPPORT_CLI_REPL_H

#include <jansson.h>

#include "rapport/lua.h"
#include "rapport/store.h"

#define REPL_CHUNKNAME "repl" /* the file in "file:line: message" */

/** Runs the REPL on stdin over @p s with @p l (both borrowed); returns the exit status. */
int rp_cli_repl(rp_store_t *s, rp_lua_t *l, const char *db);

/* ---- a growable string ------------------------------------------------------------------- */

/** A NUL-terminated string that grows; zero-initialise, free(p) when done. */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf_t;

/** Appends @p n bytes of @p s; false when out of memory (the string is then unchanged). */
bool repl_buf_add(buf_t *b, const char *s, size_t n);
/** Appends the C string @p s. */
bool repl_buf_str(buf_t *b, const char *s);

/* ---- the session ------------------------------------------------------------------------- */

/** One session's state, shared by the REPL's rooms. */
typedef struct repl {
    rp_store_t *s;
    rp_lua_t *l;
    struct lua_State *L;
    bool tty;      /**< stdin is a terminal: libedit, prompts, completion and history */
    bool dry;      /**< :dry on */
    bool wide;     /**< :wide on: tables show every value whole */
    char *history; /**< the history file, or NULL when there is none (owned) */
    /** The crm.find the running input called last: its entity and its query table written as
     *  Lua (without `after`; "" for none), or NULL when it called none (both owned). */
    char *find_entity, *find_query;
    /** The Lua that fetches the next page of the last list shown (owned), or NULL. */
    char *next_code;
} repl_t;

/** What the timer saw of one input (:time). */
typedef struct repl_timing {
    double wall_ms;           /**< From the start of the run to its end, printing left out. */
    long long instructions;   /**< Lua instructions, counted in steps of REPL_COUNT_STEP. */
} repl_timing_t;

#define REPL_COUNT_STEP 100 /* :time counts instructions in steps of this many (cheaply) */

/** Runs one input as typed (dry or not) and prints its results; @p t, when not NULL, times it
 *  and prints how long it took. */
void repl_run_chunk(repl_t *r, const char *code, repl_timing_t *t);

/** Runs a ":command" line. Returns false when the session should end. */
bool repl_command(repl_t *r, const char *line);

/* ---- paging (repl_page.c) ---------------------------------------------------------------- */

/** Puts a thin wrapper around the state's crm.find that notes each call's entity and query in
 *  @p r, so a page's cursor can be shown as the call that fetches the next one. Returns 0, or
 *  -1 when the wrapper could not be put in place (the REPL then shows bare cursors). */
int repl_page_setup(repl_t *r);
/** Forgets the crm.find noted for the previous input, before the next runs. */
void repl_page_reset(repl_t *r);
/** Prints the line that offers the page after @p cursor of the crm.find last noted, and keeps
 *  its Lua for :next. Returns false (printing nothing) when no crm.find was noted. */
bool repl_page_hint(repl_t *r, const char *cursor);

/**
 * Appends the Lua value at @p idx of @p L to @p b as a Lua literal that reads back as the same
 * value: nil, booleans, numbers, strings and tables of them (keys sorted, `after` last).
 * Returns false for anything else (a function, a cycle, too deep) or when out of memory.
 */
bool repl_lua_literal(struct lua_State *L, int idx, buf_t *b);

/* ---- printing (repl_show.c) -------------------------------------------------------------- */

/** Prints an input's results: records as `field = value` lines, a list of records as a table
 *  that fits the terminal (whole with :wide), anything else as `rapport eval` prints it.
 *  Trailing nils after a value are left out (the missing next-page cursor of crm.find), but a
 *  lone nil is shown; a cursor after a list is shown as the call that fetches the next page. */
void repl_print_results(repl_t *r, json_t *results);
/** Prints what a dry run would have changed: a table of records, field by field (old → new),
 *  then events and jobs. */
void repl_print_diff(repl_t *r, json_t *changes);
/** Prints @p nrows rows of @p ncols cells (row-major; the first row is the header, cells may
 *  be NULL for empty) as an aligned table under a rule, cut with "…" so a row fits the terminal
 *  unless :wide is on. The cells are borrowed. */
void repl_print_grid(repl_t *r, char *const *cells, size_t nrows, size_t ncols);

/** qsort() order of C strings held by pointer. */
int repl_cmp_str(const void *a, const void *b);

/* ---- width (repl_width.c) ---------------------------------------------------------------- */

/** The width to fit output to: the terminal's when stdout is one, else $COLUMNS, else 80. */
int repl_term_width(void);
/** How many terminal columns UTF-8 text @p s takes: combining marks and joiners 0, wide (CJK)
 *  characters 2, anything else (an invalid byte too) 1. */
size_t repl_text_width(const char *s);
/** A copy of @p s cut to at most @p width columns at a character boundary, ending in "…" when
 *  anything was cut. Owned: free(); NULL when out of memory. */
char *repl_text_cut(const char *s, size_t width);

#endif
