# The build as users meet it. build_long_path copies the tree to a path over 150 characters and
# builds one configuration there with warnings as errors (scripts/longpath-build.sh): a path of
# the checkout in a fixed-size buffer fails it. Once per CI run: the plain build runs it.
if(NOT OUTPOST_SANITIZE AND NOT CMAKE_CROSSCOMPILING)
    add_test(NAME build_long_path
             COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/longpath-build.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR}/longpath ${OUTPOST_DEPS_PREFIX})
    set_tests_properties(build_long_path PROPERTIES TIMEOUT 900 LABELS build)
endif()

# `--version` on every binary prints its name, the project's version and the build (the git
# commit, cmake/build_id.cmake), and nothing else.
set(build_re "build ([0-9a-f]+(-dirty)?|unknown)")
foreach(pair "outpostd;outpostd" "outpost-admin;outpost-admin" "outpost_cli;outpost")
    list(GET pair 0 target)
    list(GET pair 1 shown)
    if(TARGET ${target})
        add_test(NAME version_${shown} COMMAND ${target} --version)
        set(want "^${shown} ${PROJECT_VERSION} \\(${build_re}\\)\n$")
        if(shown STREQUAL "outpost")
            set(want "^outpost ${PROJECT_VERSION} \\(liboutpost ${PROJECT_VERSION}, ${build_re}\\)\n$")
        endif()
        set_tests_properties(version_${shown} PROPERTIES PASS_REGULAR_EXPRESSION "${want}"
                             LABELS build)
    endif()
endforeach()

# make demo: one build line per part (log file named), nothing left running afterwards.
if(NOT OUTPOST_SANITIZE AND TARGET outpostd AND TARGET outpost-admin AND TARGET outpost_cli)
    add_test(NAME demo_check
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/demo_check.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR})
    set_tests_properties(demo_check PROPERTIES TIMEOUT 120 LABELS build)
endif()

# liboutpost installed into a temporary prefix; examples/app built against it with pkg-config
# and find_package(Outpost), shared and static, and run (tests/install_check.sh).
if(NOT OUTPOST_SANITIZE AND NOT CMAKE_CROSSCOMPILING AND TARGET outpost_shared)
    add_test(NAME install_check
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR})
    set_tests_properties(install_check PROPERTIES TIMEOUT 300 LABELS build)
endif()

# make package: lintian, systemd-analyze verify, and outpostd from the extracted packages
# answering /healthz (tests/package_check.sh).
if(NOT OUTPOST_SANITIZE AND TARGET outpostd AND TARGET outpost_shared)
    add_test(NAME package_check
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package_check.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR})
    set_tests_properties(package_check PROPERTIES TIMEOUT 300 LABELS build)
endif()

# docs/operations.md's install, upgrade and rollback blocks run as written on this build's
# packages in a throwaway root (tests/ops_docs_check.sh).
if(NOT OUTPOST_SANITIZE AND TARGET outpostd AND TARGET outpost_shared)
    add_test(NAME ops_docs_check
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ops_docs_check.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR})
    set_tests_properties(ops_docs_check PROPERTIES TIMEOUT 300 LABELS build)
endif()
