# The field app (`outpost field`) in headless Chromium at phone size (tests/browser/run.sh with
# field.test.mjs): offline recording, sync against a real outpostd, the synced contact on the
# supervisors' dashboard (field-dashboard.steps.mjs), a refused record fixed and resubmitted,
# the token. Screenshots in BUILD/tests/artifacts/field-*.png.
if(TARGET outpostd AND TARGET outpost-admin AND TARGET outpost_cli)
    add_test(NAME test_field_browser
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR} field.test.mjs)
    set_tests_properties(test_field_browser PROPERTIES TIMEOUT 300 LABELS browser
                         RUN_SERIAL TRUE)
endif()
