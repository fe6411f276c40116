# embed_template.cmake — writes sdk/template into a C file the rapport binary carries, so
# `rapport plugin new` works from an installed binary with no source tree, and the skeleton
# has one source: the folder itself. Run at build time:
#   cmake -DSRC_DIR=<sdk/template> -DOUT=<file.c> -P embed_template.cmake
if(NOT SRC_DIR OR NOT OUT)
  message(FATAL_ERROR "embed_template.cmake needs -DSRC_DIR=… and -DOUT=…")
endif()
file(GLOB_RECURSE files RELATIVE ${SRC_DIR} ${SRC_DIR}/*)
list(SORT files)
set(body "")
set(table "")
set(i 0)
foreach(f ${files})
  # A build folder or an editor's leftovers inside the template are not part of it.
  if(f MATCHES "(^|/)(build[^/]*|\\.[^/]*)(/|$)" OR f MATCHES "~$")
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
set(text "/* Generated from sdk/template by sdk/cmake/embed_template.cmake: do not edit. */\n")
string(APPEND text "#include \"sdk_template.h\"\n\n${body}\n")
string(APPEND text "const rp_sdk_file_t rp_sdk_template[] = {\n${table}    {0, 0, 0},\n};\n")
# Only a changed text touches the file, so an unchanged template rebuilds nothing.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE ${OUT} "${text}")
