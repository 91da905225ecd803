# Test equipment shared by the integration tests: the fault-injecting TCP proxy.
add_library(outpost_faultproxy STATIC integration/faultproxy.c)
target_include_directories(outpost_faultproxy PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(outpost_faultproxy PUBLIC Threads::Threads PRIVATE outpost_warnings)
outpost_add_test(test_faultproxy SOURCES unit/test_faultproxy.c LIBS outpost_faultproxy)
