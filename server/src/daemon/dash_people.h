/*
 * The dashboard's admin section: people over their lifetime, as outpost-admin manages them
 * (store_lifecycle.c), for administrators only. Runs on the worker thread like dash_api.c.
 */
#ifndef OUTPOSTD_DASH_PEOPLE_H
#define OUTPOSTD_DASH_PEOPLE_H

#include "dash_api.h"

/* DASH_PEOPLE: {"teams":[...],"workers":[...],"users":[...]}. */
void dash_people_list(dash_call *c, store *st);

/* DASH_PEOPLE_ACT: p_action on p_kind p_id, audited as "KIND.ACTION" by the admin. A disabled
 * or removed account is named in c->ended_user, so the service thread ends its sessions. */
void dash_people_act(dash_call *c, store *st);

#endif /* OUTPOSTD_DASH_PEOPLE_H */
