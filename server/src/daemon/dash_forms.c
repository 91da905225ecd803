#include "dash_forms.h"

#include <stdlib.h>

void dash_forms_get(dash_call *c, store *st)
{
    char *json = NULL;
    int rc = store_forms_json(st, &json);
    c->content_type = "application/json";
    dash_buf_free(&c->body);
    if (rc != STORE_OK) {
        c->http_status = rc == STORE_EBUSY ? 503 : 500;
        dash_buf_puts(&c->body, rc == STORE_EBUSY
                                    ? "{\"error\":\"the store is busy: try again\"}"
                                    : "{\"error\":\"the store failed: see the server log\"}");
        return;
    }
    c->http_status = 200;
    dash_buf_puts(&c->body, json);
    free(json);
}
