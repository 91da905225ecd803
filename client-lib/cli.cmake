# The outpost CLI: built only on liboutpost's public API (include/outpost.h). `outpost field`
# (cli/field.c) serves the field app, whose files (cli/field-web/) are compiled in by
# cmake/embed_web.cmake as the dashboard's are, over libwebsockets' plain HTTP on loopback.
set(outpost_field_files index.html app.js app.css)
set(outpost_field_deps "")
foreach(f IN LISTS outpost_field_files)
    list(APPEND outpost_field_deps ${CMAKE_CURRENT_LIST_DIR}/cli/field-web/${f})
endforeach()
add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/field_assets.c
    COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${CMAKE_CURRENT_LIST_DIR}/cli/field-web
            "-DFILES=${outpost_field_files}" -DOUT=${CMAKE_CURRENT_BINARY_DIR}/field_assets.c
            -DURL_PREFIX=/
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_web.cmake
    DEPENDS ${outpost_field_deps} ${PROJECT_SOURCE_DIR}/cmake/embed_web.cmake
    COMMENT "Embedding the field app's web files"
    VERBATIM)

add_executable(outpost_cli ${CMAKE_CURRENT_LIST_DIR}/cli/outpost.c
                           ${CMAKE_CURRENT_LIST_DIR}/cli/field.c
                           ${CMAKE_CURRENT_LIST_DIR}/cli/json_where.c
                           ${CMAKE_CURRENT_BINARY_DIR}/field_assets.c)
set_target_properties(outpost_cli PROPERTIES OUTPUT_NAME outpost)
target_include_directories(outpost_cli PRIVATE ${CMAKE_CURRENT_LIST_DIR}/cli)
target_link_libraries(outpost_cli PRIVATE outpost outpost_http_reply outpost_lws outpost_warnings)
install(TARGETS outpost_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
