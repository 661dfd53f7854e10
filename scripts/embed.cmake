# Concatenates text files into one C string: -DIN="a;b;c" -DOUT=file.c
# (router/lua/*.lua in name order -> the Functions library).
set(content "")
foreach(f ${IN})
  file(READ ${f} part HEX)
  string(APPEND content "${part}")
endforeach()
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
file(WRITE ${OUT} "/* generated from router/lua/ by scripts/embed.cmake */\n#include <stddef.h>\nconst char omr_functions_lua[] = {${content} 0x00};\nconst size_t omr_functions_lua_len = sizeof(omr_functions_lua) - 1;\n")
