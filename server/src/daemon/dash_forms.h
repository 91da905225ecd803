/*
 * The dashboard's forms (docs/forms.md): labels, sections and choice lists of the synced tables,
 * as outpost-admin kept them with the schema. Runs on the worker thread like dash_api.c.
 */
#ifndef OUTPOSTD_DASH_FORMS_H
#define OUTPOSTD_DASH_FORMS_H

#include "dash_api.h"

/* DASH_FORMS: the JSON array of the current schema's form objects ([] when it has none). */
void dash_forms_get(dash_call *c, store *st);

#endif /* OUTPOSTD_DASH_FORMS_H */
