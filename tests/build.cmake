# The build as users meet it. build_long_path copies the tree to a path over 150 characters and
# builds one configuration there with warnings as errors (scripts/longpath-build.sh): a path of
# the checkout in a fixed-size buffer fails it. Once per CI run: the plain build runs it.
if(NOT OUTPOST_SANITIZE)
    add_test(NAME build_long_path
             COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/longpath-build.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR}/longpath ${OUTPOST_DEPS_PREFIX})
    set_tests_properties(build_long_path PROPERTIES TIMEOUT 900 LABELS build)
endif()
