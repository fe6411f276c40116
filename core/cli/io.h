/*
 * io.h — what `rapport import` (io.c) and `rapport export` (export.c) share: the system columns,
 * CSV fields, the formula guard, and which format a file is in.
 */
#ifndef RAPPORT_CLI_IO_H
#define RAPPORT_CLI_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"

/** Whether @p name is a column every record has (id, the times, version, who). */
bool is_system(const char *name);
/** Writes @p s as one CSV field (quoted when it must be). */
void csv_out(FILE *f, const char *s);
/** Whether export writes @p s behind a single quote (a spreadsheet would run it as a formula). */
bool guarded(const char *s);
/** The format @p given, or the engine's own a file's ending names; NULL when the ending is
 *  another (a plugin's format may claim it: see plugin_format_of). */
const char *format_of(const char *path, const char *given);
/** Whether @p format is one the engine reads and writes itself (csv, jsonl). */
bool builtin_format(const char *format);
/** The format for @p path once the plugins are loaded: @p format, else the plugin format whose
 *  ending @p path has, else CSV. NULL when @p format is nobody's. */
const char *plugin_format_of(env_t *env, const char *format, const char *path, bool for_import);
/** "csv, jsonl and vcf": the formats that read (or write). */
void format_list(env_t *env, bool for_import, char *buf, size_t cap);

#endif
