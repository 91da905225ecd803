# Gives every global symbol an archive defines, other than the public API (the functions the
# headers declare OUTPOST_API), the prefix outpost_private_, in its definitions and in every
# reference inside the archive: the static liboutpost.a then defines no mbedTLS, libwebsockets
# (its SSL_* names included) or internal names an app or its other libraries may define too.
# What the shared library gets from -fvisibility=hidden and its version script (outpost.map),
# done for the archive, where visibility does not apply.
#   cmake -DNM=... -DOBJCOPY=... -DARCHIVE=liboutpost.a -DHEADERS="a.h;b.h" -P localize_archive.cmake
cmake_minimum_required(VERSION 3.16)
foreach(var NM OBJCOPY ARCHIVE HEADERS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "localize_archive: ${var} is not set")
    endif()
endforeach()

set(api "")
foreach(header ${HEADERS})
    file(STRINGS ${header} lines REGEX "^OUTPOST_API ")
    foreach(line ${lines})
        string(REGEX MATCH "outpost_[a-z0-9_]*\\(" fn "${line}")
        string(REPLACE "(" "" fn "${fn}")
        list(APPEND api ${fn})
    endforeach()
endforeach()
if(api STREQUAL "")
    message(FATAL_ERROR "localize_archive: no OUTPOST_API function in ${HEADERS}")
endif()

execute_process(COMMAND ${NM} -g --defined-only --format=posix ${ARCHIVE}
                OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "localize_archive: ${NM} failed on ${ARCHIVE}")
endif()
# posix format: "NAME TYPE VALUE SIZE" per symbol, "ARCHIVE[MEMBER]:" per member.
string(REGEX MATCHALL "(^|\n)[A-Za-z_][A-Za-z0-9_.$]* [A-Za-z]" entries "${listing}")
set(map "")
set(seen "")
foreach(entry ${entries})
    string(REGEX REPLACE "^\n?([^ ]*) .*" "\\1" name "${entry}")
    if(NOT name IN_LIST api)
        list(APPEND seen ${name})
    endif()
endforeach()
list(REMOVE_DUPLICATES seen)
foreach(name ${seen})
    string(APPEND map "${name} outpost_private_${name}\n")
endforeach()
file(WRITE ${ARCHIVE}.syms "${map}")
execute_process(COMMAND ${OBJCOPY} --redefine-syms=${ARCHIVE}.syms ${ARCHIVE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "localize_archive: ${OBJCOPY} failed on ${ARCHIVE}")
endif()
