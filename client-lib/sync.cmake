# The sync engine, enrollment and the device credentials: liboutpost's networked half, on the
# transport (outpost_transport). Part of target `outpost`.
target_sources(outpost PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/src/device.c
    ${CMAKE_CURRENT_LIST_DIR}/src/enroll.c
    ${CMAKE_CURRENT_LIST_DIR}/src/sync.c
    ${CMAKE_CURRENT_LIST_DIR}/src/sync_error.c)
target_link_libraries(outpost PRIVATE outpost_transport outpost_mbedtls)
