/*
 * A store's life: identity and epoch, online backup, restore into a new epoch, and the lock
 * that lets one outpostd serve a store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "store_internal.h"

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx_open(fx);
    *state = fx;
    return 0;
}

/* Removes what these tests leave beside the store, then the store. */
static int teardown(void **state)
{
    fixture *fx = *state;
    static const char *const extra[] = {".lock", ".bak", ".bak2", ".other", ".replaced-epoch-1",
                                        ".replaced-epoch-2", ".other-wal", ".other-shm"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s%s", fx->path, extra[i]);
        unlink(p);
    }
    fx_close(fx);
    free(fx);
    return 0;
}

static void path_with(const fixture *fx, const char *suffix, char out[400])
{
    snprintf(out, 400, "%s%s", fx->path, suffix);
}

static void reopen(fixture *fx)
{
    char err[512];
    store_close(fx->st);
    fx->st = NULL;
    int rc = store_open(fx->path, false, &fx->st, err, sizeof err);
    if (rc != 0)
        fail_msg("reopen: %s", err);
}

static void push_contacts(fixture *fx, store_device *dev, int first, int count)
{
    tpush *tp = tp_new(dev->acked_seq + 1, HLC(NOW_MS));
    static char ids[64][16];
    for (int i = 0; i < count; i++) {
        snprintf(ids[i], sizeof ids[i], "c-%03d", first + i);
        tp_insert_contact(tp, ids[i], "north", "Name");
    }
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    dev->acked_seq = m->u.ack.seq;
    proto_msg_free(m);
    tp_free(tp);
}

static void test_identity_made_at_creation_and_kept(void **state)
{
    fixture *fx = *state;
    store_identity a, b;
    assert_int_equal(store_identity_get(fx->st, &a), 0);
    assert_int_equal(strlen(a.id), 36);
    assert_int_equal(a.id[14], '4'); /* a version 4 UUID */
    assert_int_equal(a.epoch, 1);
    reopen(fx);
    assert_int_equal(store_identity_get(fx->st, &b), 0);
    assert_string_equal(a.id, b.id);
    assert_int_equal(b.epoch, 1);
}

static void test_identity_added_to_a_store_made_before_identities(void **state)
{
    fixture *fx = *state;
    store_identity before, after;
    assert_int_equal(store_identity_get(fx->st, &before), 0);
    assert_int_equal(store_exec(fx->st, "DROP TABLE _outpost_store", "drop"), 0);
    assert_int_equal(store_identity_get(fx->st, &after), STORE_EIO);
    reopen(fx);
    assert_true(fx->st->identity_created);
    assert_int_equal(store_identity_get(fx->st, &after), 0);
    assert_int_equal(strlen(after.id), 36);
    assert_string_not_equal(after.id, before.id);
    assert_int_equal(after.epoch, 1);
}

static void test_backup_is_private_consistent_and_never_overwrites(void **state)
{
    fixture *fx = *state;
    store_device ana;
    fx_device(fx, "ana", &ana);
    push_contacts(fx, &ana, 0, 3);
    char bak[400];
    path_with(fx, ".bak", bak);
    assert_int_equal(store_backup(fx->st, bak), 0);
    struct stat sb;
    assert_int_equal(stat(bak, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(store_backup(fx->st, bak), STORE_EEXISTS);
    char expect[600];
    snprintf(expect, sizeof expect, "cannot create %s: File exists (a backup never overwrites a file)",
             bak);
    assert_string_equal(store_errmsg(fx->st), expect);
    /* the copy is a store with the same rows and identity */
    store *copy = NULL;
    char err[512];
    assert_int_equal(store_open(bak, false, &copy, err, sizeof err), 0);
    store_identity a, b;
    assert_int_equal(store_identity_get(fx->st, &a), 0);
    assert_int_equal(store_identity_get(copy, &b), 0);
    assert_string_equal(a.id, b.id);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_sqlite_db(copy), "SELECT count(*) FROM contacts",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 3);
    sqlite3_finalize(s);
    store_close(copy);
    store_device_clear(&ana);
}

static void test_restore_starts_a_new_epoch_past_every_sequence(void **state)
{
    fixture *fx = *state;
    store_device ana;
    fx_device(fx, "ana", &ana);
    push_contacts(fx, &ana, 0, 2);
    char bak[400], replaced[400];
    path_with(fx, ".bak", bak);
    path_with(fx, ".replaced-epoch-1", replaced);
    assert_int_equal(store_backup(fx->st, bak), 0);
    uint64_t backup_head = 0, head = 0;
    assert_int_equal(store_server_seq(fx->st, &backup_head), 0);
    push_contacts(fx, &ana, 10, 3);
    assert_int_equal(store_server_seq(fx->st, &head), 0);
    assert_true(head > backup_head);
    store_identity before;
    assert_int_equal(store_identity_get(fx->st, &before), 0);
    store_close(fx->st);
    fx->st = NULL;

    store_restore_info info;
    char err[1024];
    int rc = store_restore(fx->path, bak, &info, err, sizeof err);
    if (rc != 0)
        fail_msg("restore: %s", err);
    assert_string_equal(info.identity.id, before.id);
    assert_int_equal(info.identity.epoch, 2);
    assert_int_equal(info.backup_epoch, 1);
    assert_int_equal(info.replaced_epoch, 1);
    assert_int_equal(info.backup_server_seq, backup_head);
    assert_int_equal(info.server_seq, head);
    assert_string_equal(info.replaced_path, replaced);
    assert_int_equal(access(replaced, F_OK), 0);

    reopen(fx);
    store_identity after;
    assert_int_equal(store_identity_get(fx->st, &after), 0);
    assert_string_equal(after.id, before.id);
    assert_int_equal(after.epoch, 2);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM contacts"), 2);
    uint64_t restored_head = 0;
    assert_int_equal(store_server_seq(fx->st, &restored_head), 0);
    assert_int_equal(restored_head, head);
    /* the next change gets a sequence no device has seen */
    store_device ben;
    fx_device(fx, "ana", &ben);
    push_contacts(fx, &ben, 20, 1);
    assert_int_equal(store_server_seq(fx->st, &restored_head), 0);
    assert_true(restored_head > head);

    /* restoring the same backup again goes past epoch 2, not back to it */
    store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(store_restore(fx->path, bak, &info, err, sizeof err), 0);
    assert_int_equal(info.identity.epoch, 3);
    assert_int_equal(info.server_seq, restored_head);
    /* the backup file itself was only read */
    store *bk = NULL;
    assert_int_equal(store_open(bak, false, &bk, err, sizeof err), 0);
    assert_int_equal(store_identity_get(bk, &after), 0);
    assert_int_equal(after.epoch, 1);
    store_close(bk);
    reopen(fx);
    store_device_clear(&ana);
    store_device_clear(&ben);
}

static void test_restore_replays_schema_upgrades_made_after_the_backup(void **state)
{
    fixture *fx = *state;
    char bak[400];
    path_with(fx, ".bak", bak);
    assert_int_equal(store_backup(fx->st, bak), 0);
    char *sql = fx_data("contacts_v2.sql"), *policy = fx_data("contacts_v2.policy");
    int rc = store_upgrade_schema(fx->st, sql, policy);
    if (rc != 0)
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    char *upgraded = fx_dump(fx);
    store_close(fx->st);
    fx->st = NULL;
    store_restore_info info;
    char err[1024];
    rc = store_restore(fx->path, bak, &info, err, sizeof err);
    if (rc != 0)
        fail_msg("restore: %s", err);
    assert_int_equal(info.n_schema_upgrades, 1);
    reopen(fx);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
    /* the same tables, columns, policies and schema history as the upgraded store */
    char *restored = fx_dump(fx);
    assert_string_equal(restored, upgraded);
    free(restored);
    free(upgraded);
    free(sql);
    free(policy);
}

/* An upgrade an earlier release applied that upgrade refuses now (a new column with a CHECK,
 * as recorded then) is still replayed by a restore: devices have it already. */
static void test_restore_replays_an_upgrade_refused_now(void **state)
{
    fixture *fx = *state;
    char bak[400];
    path_with(fx, ".bak", bak);
    assert_int_equal(store_backup(fx->st, bak), 0);
    assert_int_equal(db_exec(fx->st->conn,
                             "INSERT INTO _outpost_schema_versions SELECT 2,"
                             " replace(schema_sql, 'updated_at INTEGER', 'updated_at INTEGER,"
                             " e INTEGER CHECK (e >= 0)'), policy_text, applied_ms"
                             " FROM _outpost_schema_versions WHERE version = 1;"
                             "UPDATE _outpost_meta SET value = 2 WHERE key = 'schema_version';"),
                     0);
    store_close(fx->st);
    fx->st = NULL;
    store_restore_info info;
    char err[1024];
    if (store_restore(fx->path, bak, &info, err, sizeof err) != 0)
        fail_msg("restore: %s", err);
    assert_int_equal(info.n_schema_upgrades, 1);
    reopen(fx);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM pragma_table_info('contacts')"
                                " WHERE name = 'e'"),
                     1);
}

/* A change of forms alone is a schema version too: a restore replays it with its forms. */
static void test_restore_replays_a_forms_only_upgrade(void **state)
{
    fixture *fx = *state;
    char bak[400];
    path_with(fx, ".bak", bak);
    assert_int_equal(store_backup(fx->st, bak), 0);
    char *sql = fx_data("contacts.sql"), *policy = fx_data("contacts.policy");
    const store_form_file form = {
        .path = "forms/referrals.json",
        .text = "{\"table\": \"referrals\", \"title\": {\"en\": \"Referral\"},"
                " \"auto\": {\"id\": \"uuid\", \"team_id\": \"team\"},"
                " \"sections\": [{\"title\": {\"en\": \"Where to\"}, \"fields\": ["
                " {\"column\": \"agency\", \"label\": {\"en\": \"Agency\"},"
                " \"widget\": \"text\"}]}]}"};
    int rc = store_upgrade_schema_forms(fx->st, sql, policy, &form, 1);
    if (rc != 0)
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    char *forms = NULL;
    assert_int_equal(store_forms_json(fx->st, &forms), 0);
    assert_non_null(strstr(forms, "\"Agency\""));
    store_close(fx->st);
    fx->st = NULL;
    store_restore_info info;
    char err[1024];
    rc = store_restore(fx->path, bak, &info, err, sizeof err);
    if (rc != 0)
        fail_msg("restore: %s", err);
    assert_int_equal(info.n_schema_upgrades, 1);
    reopen(fx);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
    char *restored = NULL;
    assert_int_equal(store_forms_json(fx->st, &restored), 0);
    assert_string_equal(restored, forms);
    free(restored);
    free(forms);
    free(sql);
    free(policy);
}

static void test_restore_onto_a_lost_store_still_starts_a_new_epoch(void **state)
{
    fixture *fx = *state;
    char bak[400], replaced[400];
    path_with(fx, ".bak", bak);
    path_with(fx, ".replaced-epoch-1", replaced);
    assert_int_equal(store_backup(fx->st, bak), 0);
    store_close(fx->st);
    fx->st = NULL;
    /* first restore: epoch 2, and the replaced store kept beside it */
    store_restore_info info;
    char err[1024];
    assert_int_equal(store_restore(fx->path, bak, &info, err, sizeof err), 0);
    assert_int_equal(info.identity.epoch, 2);
    /* the disk holding the store dies (the kept copy goes with it); the same backup again */
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(unlink(replaced), 0);
    uint64_t now_s = store_now_ms() / 1000u;
    assert_int_equal(store_restore(fx->path, bak, &info, err, sizeof err), 0);
    assert_int_equal(info.replaced_epoch, 0);
    assert_string_equal(info.replaced_path, "");
    assert_true(info.identity.epoch >= now_s); /* not 2 again */
    reopen(fx);
    store_identity id;
    assert_int_equal(store_identity_get(fx->st, &id), 0);
    assert_int_equal(id.epoch, info.identity.epoch);
}

static void test_restore_refused_while_a_daemon_serves(void **state)
{
    fixture *fx = *state;
    char bak[400], lock[400];
    path_with(fx, ".bak", bak);
    path_with(fx, ".lock", lock);
    assert_int_equal(store_backup(fx->st, bak), 0);
    store_lock fd, fd2;
    char err[1024];
    assert_int_equal(store_lock_acquire(fx->path, &fd, err, sizeof err), 0);
    assert_true(fd.lock_fd >= 0);
    assert_true(fd.store_fd >= 0);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "another process (pid %ld) holds the store lock %s: an outpostd already serves "
             "this store, and only one may",
             (long)getpid(), lock);
    assert_int_equal(store_lock_acquire(fx->path, &fd2, err, sizeof err), STORE_EBUSY);
    assert_int_equal(fd2.lock_fd, -1);
    assert_int_equal(fd2.store_fd, -1);
    assert_string_equal(err, expect);
    store_restore_info info;
    assert_int_equal(store_restore(fx->path, bak, &info, err, sizeof err), STORE_EBUSY);
    strcat(expect, "; stop outpostd before restoring");
    assert_string_equal(err, expect);
    store_identity id;
    assert_int_equal(store_identity_get(fx->st, &id), 0);
    assert_int_equal(id.epoch, 1);
    store_lock_release(&fd);
    /* released: the next holder gets it */
    assert_int_equal(store_lock_acquire(fx->path, &fd2, err, sizeof err), 0);
    store_lock_release(&fd2);
}

static void test_restore_refuses_another_stores_backup(void **state)
{
    fixture *fx = *state;
    char other_path[400], bak[400];
    path_with(fx, ".other", other_path);
    path_with(fx, ".bak", bak);
    store *other = NULL;
    char err[1024];
    assert_int_equal(store_open(other_path, true, &other, err, sizeof err), 0);
    store_identity oid, mine;
    assert_int_equal(store_identity_get(other, &oid), 0);
    assert_int_equal(store_backup(other, bak), 0);
    store_close(other);
    assert_int_equal(store_identity_get(fx->st, &mine), 0);
    store_restore_info info;
    assert_int_equal(store_restore(fx->path, bak, &info, err, sizeof err), STORE_EINVAL);
    char expect[1200];
    snprintf(expect, sizeof expect,
             "%s is a backup of another store (%s), not of %s (%s): refusing to replace one "
             "store with another",
             bak, oid.id, fx->path, mine.id);
    assert_string_equal(err, expect);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM _outpost_tables") > 0, 1);
    /* a file that is no store at all */
    char junk[400];
    path_with(fx, ".bak2", junk);
    FILE *f = fopen(junk, "w");
    fputs("not a database", f);
    fclose(f);
    assert_int_equal(store_restore(fx->path, junk, &info, err, sizeof err), STORE_EINVAL);
    assert_non_null(strstr(err, "is not a usable Outpost store backup"));
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_identity_made_at_creation_and_kept),
        T_(test_identity_added_to_a_store_made_before_identities),
        T_(test_backup_is_private_consistent_and_never_overwrites),
        T_(test_restore_starts_a_new_epoch_past_every_sequence),
        T_(test_restore_replays_schema_upgrades_made_after_the_backup),
        T_(test_restore_replays_a_forms_only_upgrade),
        T_(test_restore_replays_an_upgrade_refused_now),
        T_(test_restore_onto_a_lost_store_still_starts_a_new_epoch),
        T_(test_restore_refused_while_a_daemon_serves),
        T_(test_restore_refuses_another_stores_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
