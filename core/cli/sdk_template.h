/*
 * sdk_template.h — the plugin skeleton of sdk/template, carried in the binary (generated at
 * build time by sdk/cmake/embed_assets.cmake, TEMPLATE=1) for `rapport plugin new`.
 */
#ifndef RAPPORT_CLI_SDK_TEMPLATE_H
#define RAPPORT_CLI_SDK_TEMPLATE_H

#include <stddef.h>

/** One file of the skeleton. */
typedef struct rp_sdk_file {
    const char *path;            /**< Relative to the skeleton's folder ("scripts/template_test.lua"). */
    const unsigned char *bytes;  /**< Its content (followed by a NUL not counted in size). */
    size_t size;
} rp_sdk_file_t;

/** The files, in path order, ended by an entry whose path is NULL. */
extern const rp_sdk_file_t rp_sdk_template[];

#endif
