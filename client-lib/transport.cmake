# The device's connection to outpostd: a libwebsockets client on mbedTLS 3.6 (transport.c) and
# the reconnect schedule (backoff.c). Internal to liboutpost; the sync engine in target
# `outpost` links it.
add_library(outpost_transport STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/src/transport.c
    ${CMAKE_CURRENT_SOURCE_DIR}/src/backoff.c)
target_include_directories(outpost_transport PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
# transport.h exposes neither lws nor mbedTLS, so both stay PRIVATE (a static library still
# passes them on to whatever links it).
target_link_libraries(outpost_transport PRIVATE outpost_lws outpost_mbedtls outpost_warnings)
