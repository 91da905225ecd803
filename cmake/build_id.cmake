# cmake -DSRC=<source dir> -DOUT=<header> -P build_id.cmake, at every build (the
# outpost_build_id_gen target): writes OUT with OUTPOST_BUILD_ID, the source's git commit (12 hex
# digits, "-dirty" when the tree has uncommitted changes) or "unknown" outside a git checkout (a
# release tarball). The file is rewritten only when that changes, so a build that changes
# nothing recompiles nothing. Operators tell builds apart by it (`--version`, outpostd's log and
# /metrics, the device view's app string).
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12 --match=NONE
                OUTPUT_VARIABLE id RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT rc EQUAL 0 OR NOT id MATCHES "^[0-9a-f]+(-dirty)?$")
    set(id "unknown")
endif()
set(text "/* Made by cmake/build_id.cmake at each build. */\n#define OUTPOST_BUILD_ID \"${id}\"\n")
set(old "")
if(EXISTS "${OUT}")
    file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
    file(WRITE "${OUT}" "${text}")
endif()
