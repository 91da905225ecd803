# The device transport (client-lib/transport.cmake): the reconnect schedule, and the TLS
# WebSocket client against a real lws echo server on 127.0.0.1 with certificates made by the
# test (needs the openssl command line).
if(TARGET outpost_transport)
    outpost_add_test(test_backoff
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_backoff.c
        LIBS outpost_transport
        LABELS client)
    outpost_add_test(test_transport
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_transport.c
        LIBS outpost_transport outpost_faultproxy outpost_lws
        LABELS "client;network"
        TIMEOUT 120)
    # The echo server issues TLS session tickets as outpostd does (server/src/daemon/tls.c).
    target_link_options(test_transport PRIVATE "LINKER:--wrap=mbedtls_ssl_config_defaults")
endif()
