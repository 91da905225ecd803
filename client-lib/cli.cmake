# The outpost CLI: built only on liboutpost's public API (include/outpost.h).
add_executable(outpost_cli ${CMAKE_CURRENT_LIST_DIR}/cli/outpost.c)
set_target_properties(outpost_cli PROPERTIES OUTPUT_NAME outpost)
target_link_libraries(outpost_cli PRIVATE outpost outpost_warnings)
install(TARGETS outpost_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
