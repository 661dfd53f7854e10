# Turns a text file into a C string: -DIN=file -DOUT=file.c
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
file(WRITE ${OUT} "/* generated from router/functions.lua by scripts/embed.cmake */\n#include <stddef.h>\nconst char omr_functions_lua[] = {${content} 0x00};\nconst size_t omr_functions_lua_len = sizeof(omr_functions_lua) - 1;\n")
