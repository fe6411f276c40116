# embed_assets.cmake — writes a folder of web files (pages, styles, scripts) into a C table of
# rp_http_asset_t-shaped entries {path, data, len}, ended by {0}, so one binary serves them
# with no file system behind a URL. The approach of embed_template.cmake; run at build time:
#   cmake -DSRC_DIR=<folder> -DOUT=<file.c> -DSYMBOL=<name> [-DINCLUDE=<header>]
#         [-DTYPE=<struct type>] -P embed_assets.cmake
# A plugin can embed its own bundle with it (TYPE rapport_asset, INCLUDE rapport_plugin.h) and
# hand the table to the host's serve_assets.
if(NOT SRC_DIR OR NOT OUT OR NOT SYMBOL)
  message(FATAL_ERROR "embed_assets.cmake needs -DSRC_DIR=…, -DOUT=… and -DSYMBOL=…")
endif()
if(NOT INCLUDE)
  set(INCLUDE "rapport/http.h")
endif()
if(NOT TYPE)
  set(TYPE "rp_http_asset_t")
endif()
file(GLOB_RECURSE files RELATIVE ${SRC_DIR} ${SRC_DIR}/*)
list(SORT files)
set(body "")
set(table "")
set(i 0)
foreach(f ${files})
  # Hidden files, editors' leftovers and notes for developers are not served.
  if(f MATCHES "(^|/)\\.[^/]*(/|$)" OR f MATCHES "~$" OR f MATCHES "(^|/)README\\.md$")
    continue()
  endif()
  file(READ ${SRC_DIR}/${f} hex HEX)
  file(SIZE ${SRC_DIR}/${f} size)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    "
         bytes "${bytes}")
  string(APPEND body "static const unsigned char f${i}[] = {\n    ${bytes}0};\n")
  string(APPEND table "    {\"${f}\", f${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endforeach()
set(text "/* Generated from ${SRC_DIR} by embed_assets.cmake: do not edit. */\n")
string(APPEND text "#include \"${INCLUDE}\"\n\n${body}\n")
string(APPEND text "const ${TYPE} ${SYMBOL}[] = {\n${table}    {0, 0, 0},\n};\n")
# Only a changed text touches the file, so unchanged pages rebuild nothing.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE ${OUT} "${text}")
