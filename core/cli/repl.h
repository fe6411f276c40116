/*
 * repl.h — the REPL (repl.c), and what its session asks of its printing (repl_show.c).
 */
#ifndef RAPPORT_CLI_REPL_H
#define RAPPORT_CLI_REPL_H

#include <jansson.h>

#include "rapport/lua.h"
#include "rapport/store.h"

/** Runs the REPL on stdin over @p s with @p l (both borrowed); returns the exit status. */
int rp_cli_repl(rp_store_t *s, rp_lua_t *l, const char *db);

/** Prints an input's results: records as `field = value` lines, a list of records as a table,
 *  anything else as `rapport eval` prints it. Trailing nils after a value are left out (the
 *  missing next-page cursor of crm.find), but a lone nil is shown. */
void repl_print_results(rp_store_t *s, json_t *results);
/** Prints what a dry run would have changed: records field by field, events and jobs. */
void repl_print_diff(rp_store_t *s, json_t *changes);

/** qsort() order of C strings held by pointer. */
int repl_cmp_str(const void *a, const void *b);

#endif
