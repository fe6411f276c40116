# embed_assets.cmake — writes a folder's files into a C table of {path, data, len} entries,
# ended by {0}, so one binary carries them with no file system behind them: the web pages
# rapport serve serves (rp_http_asset_t), a plugin's bundle for serve_assets (TYPE
# rapport_asset, INCLUDE rapport_plugin.h), the SDK skeleton `rapport plugin new` writes
# (TEMPLATE=1: its README.md kept, build folders left out). Run at build time:
#   cmake -DSRC_DIR=<folder> -DOUT=<file.c> -DSYMBOL=<name> [-DINCLUDE=<header>]
#         [-DTYPE=<struct type>] [-DTEMPLATE=1] [-DEXTRA=name=file|…] -P embed_assets.cmake
if(NOT SRC_DIR OR NOT OUT OR NOT SYMBOL)
  message(FATAL_ERROR "embed_assets.cmake needs -DSRC_DIR=…, -DOUT=… and -DSYMBOL=…")
endif()
if(NOT INCLUDE)
  set(INCLUDE "rapport/http.h")
endif()
if(NOT TYPE)
  set(TYPE "rp_http_asset_t")
endif()
# Appends file @p path as the entry @p name to body and table.
macro(embed_one name path)
  file(READ ${path} hex HEX)
  file(SIZE ${path} size)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    "
         bytes "${bytes}")
  string(APPEND body "static const unsigned char f${i}[] = {\n    ${bytes}0};\n")
  string(APPEND table "    {\"${name}\", f${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endmacro()
file(GLOB_RECURSE files RELATIVE ${SRC_DIR} ${SRC_DIR}/*)
list(SORT files)
set(body "")
set(table "")
set(i 0)
foreach(f ${files})
  # Hidden files and editors' leftovers are never carried; a page folder's README.md is a note
  # for developers, not served; a template's build folders are not part of it.
  if(f MATCHES "(^|/)\\.[^/]*(/|$)" OR f MATCHES "~$")
    continue()
  endif()
  if(TEMPLATE AND f MATCHES "(^|/)build[^/]*(/|$)")
    continue()
  endif()
  if(NOT TEMPLATE AND f MATCHES "(^|/)README\\.md$")
    continue()
  endif()
  embed_one(${f} ${SRC_DIR}/${f})
endforeach()
# EXTRA="name=file|name=file": files from elsewhere (a Debian package's library) carried under
# the names given, as if they were in the folder.
if(EXTRA)
  string(REPLACE "|" ";" extras "${EXTRA}")
  foreach(x ${extras})
    string(REGEX MATCH "^([^=]+)=(.+)$" ok "${x}")
    if(NOT ok OR NOT EXISTS "${CMAKE_MATCH_2}")
      message(FATAL_ERROR "embed_assets.cmake: EXTRA entry \"${x}\" is not name=existing-file")
    endif()
    embed_one(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endforeach()
endif()
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
