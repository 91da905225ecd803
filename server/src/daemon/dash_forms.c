#include "dash_forms.h"

#include <stdlib.h>

void dash_forms_get(dash_call *c, store *st)
{
    char *json = NULL;
    int rc = store_forms_json(st, &json);

    if (rc != STORE_OK) {
        dash_reply_store_error(c, st, rc);
        return;
    }
    c->content_type = "application/json";
    dash_buf_free(&c->body);
    c->http_status = 200;
    dash_buf_puts(&c->body, json);
    free(json);
}
