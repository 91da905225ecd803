/*
 * outpost-admin: the office's command line over the central store.
 *
 *   outpost-admin --store PATH COMMAND [ARGS]     (each COMMAND takes --help)
 *   outpost-admin --store postgresql:CONNINFO --audit-key FILE COMMAND [ARGS]
 *
 * Exit codes: 0 done; 1 the store refused (unknown worker, exists already, bad schema, ...);
 * 2 usage error; 3 the store could not be opened or failed (I/O, disk full, locked).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "admin_forms.h"
#include "schema_parse.h"
#include "outpost_build_id.h"
#include "outpost_version.h"
#include "db.h"
#include "store.h"
#include "store_watch.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_STORE = 3 };
enum { MAX_FILE_BYTES = 4 * 1024 * 1024, MAX_TEAMS = 64, MAX_EXPIRES_HOURS = 720 };

static const char usage_main[] =
    "usage: outpost-admin --store PATH|postgresql:CONNINFO COMMAND [ARGS]\n"
    "       outpost-admin --version\n"
    "       (before COMMAND, --audit-key FILE names the audit log's key; default\n"
    "       PATH.audit-key, made by init)\n"
    "       --store postgresql:CONNINFO opens a store kept in PostgreSQL (a libpq\n"
    "       connection string, or a postgresql:// URI; keep the password in PGPASSWORD\n"
    "       or ~/.pgpass; --audit-key is then required; only init makes a store): init,\n"
    "       upgrade, team, worker, enroll, devices, revoke, user and audit run on it;\n"
    "       backup and restore still need a SQLite store (restored marks a PostgreSQL\n"
    "       store restored with PostgreSQL's tools)\n"
    "\n"
    "commands:\n"
    "  init --schema FILE.sql --policy FILE [--forms DIR] [--watch FILE.json] [--check]\n"
    "                                           create the store and its synced tables\n"
    "  upgrade --schema FILE.sql --policy FILE [--forms DIR] [--watch FILE.json] [--check]\n"
    "                                           apply an additive schema change\n"
    "  team add ID [--name NAME]                create a team\n"
    "  worker add ID --team T [--team T2 ...]   create a worker in one or more teams\n"
    "  enroll WORKER [--expires HOURS] [--server HOST:PORT]\n"
    "                                           issue a one-time enrollment code (text + QR)\n"
    "  devices [--worker ID]                    list devices with their last sync\n"
    "  revoke DEVICE [--wipe]                   revoke a device (and order a wipe)\n"
    "  user add NAME --role supervisor|admin [--team T ...] [--password-fd N]\n"
    "                                           create a dashboard account\n"
    "  user unlock NAME                         lift a lock after failed logins\n"
    "  team list, worker list, user list        who is there, their teams and state\n"
    "  worker disable|enable|remove ID          stop, restart, or end a worker's syncing\n"
    "  worker move ID --team T [--team T2 ...]  replace a worker's teams\n"
    "  user disable|enable|remove NAME          end or restore a dashboard account\n"
    "  user teams NAME --team T ...             replace an account's teams\n"
    "  user reset-password NAME [--password-fd N]  set a new password, lift a lock\n"
    "  audit verify [--checkpoint FILE]         check the audit log's keyed chain and checkpoints\n"
    "  audit checkpoint [--append FILE]         print (and append) a signed checkpoint\n"
    "  audit list [--limit N]                   print the newest audit entries\n"
    "  backup FILE                              consistent copy of the store, while it serves\n"
    "  restore FILE                             put a backup in place (outpostd stopped)\n"
    "  restored [--moved --confirm-nothing-lost] PostgreSQL: after pg_restore or a base backup,\n"
    "                                           start a new epoch (outpostd stopped)\n"
    "\n"
    "Run 'outpost-admin COMMAND --help' for a command's details.\n"
    "Exit codes: 0 done, 1 refused by the store, 2 usage error, 3 store failure.\n";

#define FORMS_HELP                                                                         \
    "The forms (docs/forms.md) are the *.json files of --forms DIR, by default of the forms/\n" \
    "directory beside FILE.sql; each is validated against the schema first.\n"              \
    "--check runs every check and applies nothing (init --check makes no store file).\n"

static const char usage_init[] =
    "usage: outpost-admin --store PATH init --schema FILE.sql --policy FILE [--forms DIR]\n"
    "       [--check] [--watch FILE.json]\n"
    "Creates the store at PATH (if missing) and its synced tables from FILE.sql (CREATE TABLE and\n"
    "CREATE INDEX statements only). The policy file has one line per table:\n"
    "  TABLE scope=COLUMN [policy=hlc|server-wins|device-wins]\n"
    "Every table needs an explicit non-integer PRIMARY KEY (a TEXT UUID).\n"
    FORMS_HELP
    "init also creates the audit key (--audit-key FILE, default PATH.audit-key, mode 0600)\n"
    "unless it exists. Keep it readable by outpostd's user only, and back it up apart from the\n"
    "store: whoever holds both can rewrite the audit log (docs/threat-model.md).\n"
    "--watch names the watch rules (docs/watch.md): each is checked against the schema and\n"
    "nothing is changed when one does not compile.\n";
static const char usage_upgrade[] =
    "usage: outpost-admin --store PATH upgrade --schema FILE.sql --policy FILE [--forms DIR]\n"
    "       [--check] [--drop-forms] [--watch FILE.json]\n"
    "Applies an additive change: new tables, new nullable or defaulted columns appended at the\n"
    "end of a table, new indexes. Removing, renaming or retyping anything is refused.\n"
    FORMS_HELP
    "Changed forms alone are a new schema version too. A package without forms is refused\n"
    "while the store has forms (every device would lose them); --drop-forms removes them.\n"
    "--watch replaces the watch rules (docs/watch.md), checked against the new schema first;\n"
    "changed rules alone are a new schema version too.\n";
static const char usage_team[] =
    "usage: outpost-admin --store PATH team add ID [--name NAME]\n"
    "Creates a team. Team ids are the values of the synced tables' scope columns.\n";
static const char usage_worker[] =
    "usage: outpost-admin --store PATH worker add ID --team T [--team T2 ...]\n"
    "Creates a worker in one or more existing teams. See also: worker list|disable|enable|\n"
    "remove|move (outpost-admin user --help shows them all).\n";
static const char usage_enroll[] =
    "usage: outpost-admin --store PATH enroll WORKER [--expires HOURS]\n"
    "                     [--server HOST:PORT [--cert SERVER.pem]]\n"
    "Issues a one-time enrollment code for WORKER, valid HOURS hours (default 24, at most 720),\n"
    "printed as text and as a QR code. With --server the QR code holds\n"
    "outpost://HOST:PORT/enroll?code=CODE, otherwise just the code. With --cert (the server\n"
    "certificate outpostd presents) it also holds &pin=SHA256, so a phone that scans it can\n"
    "verify the server before it has the office's CA.\n";
static const char usage_devices[] =
    "usage: outpost-admin --store PATH devices [--worker ID]\n"
    "Lists every device (or one worker's): id, worker, name, last sync (UTC), state.\n";
static const char usage_revoke[] =
    "usage: outpost-admin --store PATH revoke DEVICE [--wipe]\n"
    "Revokes DEVICE: it can no longer sync. With --wipe it is also told to erase its replica\n"
    "the next time it connects.\n";

static const char usage_backup[] =
    "usage: outpost-admin --store PATH backup FILE\n"
    "Writes a consistent copy of the store to FILE (created 0600; never overwritten). Safe while\n"
    "outpostd serves the store: the copy is one read transaction.\n";
static const char usage_restore[] =
    "usage: outpost-admin --store PATH restore FILE\n"
    "Puts the backup FILE in place as the store. Refused while an outpostd serves the store.\n"
    "The restored store starts a new epoch: every device notices, re-sends what it pushed after\n"
    "the backup and pulls again in full. The replaced store is kept as PATH.replaced-epoch-N.\n";

static const char usage_restored[] =
    "usage: outpost-admin --store postgresql:CONNINFO --audit-key FILE restored\n"
    "                     [--moved --confirm-nothing-lost]\n"
    "Run after restoring a PostgreSQL store with PostgreSQL's tools (pg_restore, a base backup)\n"
    "and before starting outpostd. Gives the store a new epoch, as restore does on SQLite: every\n"
    "device notices, sends again what it pushed after the backup and pulls again in full.\n"
    "Refused while any outpostd serves the database. outpostd refuses to start on a store\n"
    "restored from a dump or copied elsewhere until this is run.\n"
    "--moved --confirm-nothing-lost: the database was moved with nothing lost (pg_upgrade, a\n"
    "copy of a stopped store): its new place is recorded and the epoch kept, so devices do\n"
    "not send again or pull again. On a dump or backup taken while outpostd served, this\n"
    "would leave devices without records for good: when unsure, leave both out (it costs\n"
    "each device one full pull and loses nothing). --moved alone explains and changes nothing.\n";

static const char usage_user[] =
    "usage: outpost-admin --store PATH user add NAME --role supervisor|admin [--team T ...]\n"
    "                                            [--password-fd N]\n"
    "       outpost-admin --store PATH user unlock NAME\n"
    "Creates a dashboard account. A supervisor sees only its teams (at least one --team); an\n"
    "admin sees every team and the audit log. The password (12 to 1024 characters) is read\n"
    "from the terminal, asked twice, or with --password-fd N as the first line read from file\n"
    "descriptor N (for scripts: --password-fd 3 3<file, or 3< <(printf %%s \"$PW\")). It is\n"
    "never taken from the command line, and is kept only as an Argon2id hash.\n"
    "       outpost-admin --store PATH user list|disable|enable|remove|teams|reset-password\n"
    "(see the lifecycle commands below)\n\n";
static const char usage_audit[] =
    "usage: outpost-admin --store PATH audit verify [--checkpoint FILE ...]\n"
    "       outpost-admin --store PATH audit checkpoint [--append FILE]\n"
    "       outpost-admin --store PATH audit list [--limit N]\n"
    "verify recomputes the chain with the audit key and checks its seal, then every checkpoint\n"
    "line found in each FILE (a checkpoint file, or outpostd's log); it exits 0 when all verify,\n"
    "1 naming the first row that does not (changed, inserted, removed, or a cut-off tail).\n"
    "checkpoint prints a signed line (rows, newest hash, time) to keep outside the store;\n"
    "--append also appends it to FILE. list prints the newest entries.\n";

static const char usage_people[] =
    "usage: outpost-admin --store PATH team list\n"
    "       outpost-admin --store PATH worker list\n"
    "       outpost-admin --store PATH worker disable|enable|remove ID\n"
    "       outpost-admin --store PATH worker move ID --team T [--team T2 ...]\n"
    "       outpost-admin --store PATH user list\n"
    "       outpost-admin --store PATH user disable|enable|remove NAME\n"
    "       outpost-admin --store PATH user teams NAME [--team T ...]\n"
    "       outpost-admin --store PATH user reset-password NAME [--password-fd N]\n"
    "       outpost-admin --store PATH devices [--worker ID]\n"
    "disable stops a worker's devices (at their next request) or an account's dashboard\n"
    "sessions (at their next request) until enable. remove revokes every device of a worker\n"
    "with a wipe order and drops its teams for good; it deletes an account. move and teams\n"
    "replace the teams (devices get the new scope at their next sync). reset-password sets a\n"
    "new password (read as for user add) and lifts a lock. Every change is audited.\n";

static const char *audit_key_path; /* --audit-key, or NULL for PATH.audit-key */

/* Prints "outpost-admin: MESSAGE" (with 'ARG' when given) and the command's usage. */
static int usage_error(const char *usage, const char *message, const char *arg)
{
    if (arg != NULL)
        fprintf(stderr, "outpost-admin: %s '%s'\n\n%s", message, arg, usage);
    else
        fprintf(stderr, "outpost-admin: %s\n\n%s", message, usage);
    return EXIT_USAGE;
}

/* Options that take a value; given last on the line, they are a usage error of their own. */
static bool missing_value(int i, int argc, char **argv)
{
    static const char *const with_value[] = {"--store",   "--schema", "--policy",
                                             "--name",    "--team",   "--expires",
                                             "--server",  "--cert",   "--role",   "--password-fd",
                                             "--limit",   "--audit-key", "--checkpoint",
                                             "--append",  "--forms"};
    if (i + 1 < argc)
        return false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
        if (strcmp(argv[i], with_value[k]) == 0)
            return true;
    return false;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int exit_for(int store_rc)
{
    switch (store_rc) {
    case STORE_OK:
        return EXIT_OK;
    case STORE_EIO:
    case STORE_EFULL:
    case STORE_EBUSY:
    case STORE_ENOMEM:
        return EXIT_STORE;
    default:
        return EXIT_REFUSED;
    }
}

static int store_error(store *st, int rc)
{
    fprintf(stderr, "outpost-admin: %s\n", store_errmsg(st));
    return exit_for(rc);
}

/* Reads a whole text file (at most MAX_FILE_BYTES); NULL with a message on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "outpost-admin: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_FILE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE_BYTES + 1, f) : 0;
    bool failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed || n > MAX_FILE_BYTES) {
        fprintf(stderr, "outpost-admin: cannot read %s: %s\n", path,
                failed ? "read error or out of memory" : "file larger than 4 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n) != NULL) {
        fprintf(stderr, "outpost-admin: %s is not a text file\n", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* "postgresql:CONNINFO" (the prefix in any case) names a store kept in PostgreSQL, and so does a
 * libpq URI ("postgresql://...", "postgres://...", given to libpq as is); anything else is a
 * SQLite file. */
#define POSTGRESQL_PREFIX "postgresql:"

static const char *postgresql_conninfo(const char *path)
{
    size_t n = strlen(POSTGRESQL_PREFIX);
    if (path == NULL)
        return NULL;
    if (strncasecmp(path, "postgresql://", 13) == 0 || strncasecmp(path, "postgres://", 11) == 0)
        return path;
    return strncasecmp(path, POSTGRESQL_PREFIX, n) == 0 ? path + n : NULL;
}

/* A copy of text fit to print: the value of every "password=" (conninfo or URI query) and the
 * password of a URI's "user:password@" become "***". */
static const char *redact(const char *text, char *out, size_t size)
{
    size_t o = 0;
    const char *p = text;
    while (*p && o + 4 < size) {
        if (strncmp(p, "://", 3) == 0) {
            const char *at = p + 3 + strcspn(p + 3, "@/ ");
            const char *colon = memchr(p + 3, ':', (size_t)(at - p - 3));
            if (*at == '@' && colon != NULL) {
                size_t n = (size_t)(colon + 1 - p);
                if (o + n + 4 >= size)
                    break;
                memcpy(out + o, p, n);
                o += n;
                memcpy(out + o, "***", 3);
                o += 3;
                p = at;
                continue;
            }
        }
        if (strncasecmp(p, "password", 8) == 0) {
            const char *v = p + 8;
            while (*v == ' ')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ')
                    v++;
                if (o + (size_t)(v - p) + 4 >= size)
                    break;
                memcpy(out + o, p, (size_t)(v - p));
                o += (size_t)(v - p);
                memcpy(out + o, "***", 3);
                o += 3;
                if (*v == '\'') {
                    for (v++; *v && *v != '\''; v++)
                        if (*v == '\\' && v[1])
                            v++;
                    if (*v)
                        v++;
                } else {
                    v += strcspn(v, " &\"'\n");
                }
                p = v;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    return out;
}

/* Set by restored: the store it opens is expected to be restored, and is not warned about. */
static bool marking_restored;

static int open_store(const char *path, bool create, store **out_st)
{
    char err[512], shown[600];
    const char *conninfo = postgresql_conninfo(path);
    /* A PostgreSQL database is made by its operator; only init makes the store's tables in it. */
    /* init's whole work on PostgreSQL is one transaction, committed by cmd_schema at its end:
     * a refused, failed or killed init leaves the database as it was. */
    int rc = conninfo && create ? store_create_postgresql(conninfo, out_st, err, sizeof err)
             : conninfo         ? store_open_postgresql(conninfo, false, out_st, err, sizeof err)
                                : store_open(path, create, out_st, err, sizeof err);
    if (rc == STORE_OK && !create) {
        proto_buf buf = {0};
        uint32_t version = 0;
        rc = store_schema_encode(*out_st, &buf, &version);
        proto_buf_free(&buf);
        char why[256];
        if (rc == STORE_OK && !marking_restored &&
            store_restore_unmarked(*out_st, why, sizeof why)) {
            fprintf(stderr, "outpost-admin: warning: " STORE_UNMARKED_RESTORE_FMT "\n", why);
        }
        if (rc == STORE_OK && version == 0) {
            fprintf(stderr, "outpost-admin: init did not finish on this store (no schema): run "
                            "init again\n");
            store_close(*out_st);
            *out_st = NULL;
            return EXIT_REFUSED;
        }
        if (rc != STORE_OK) {
            fprintf(stderr, "outpost-admin: %s\n",
                    redact(store_errmsg(*out_st), shown, sizeof shown));
            store_close(*out_st);
            *out_st = NULL;
            return exit_for(rc);
        }
    }
    if (rc == STORE_OK)
        return EXIT_OK;
    if (rc == STORE_ENOTFOUND && conninfo != NULL && marking_restored)
        /* Mid-disaster, init would make a new store that every device refuses. */
        fprintf(stderr, "outpost-admin: no Outpost store in this database: restore the dump "
                        "into it first (pg_restore; docs/operations.md, \"Restoring a "
                        "PostgreSQL store\"), or check the database name in --store\n");
    else if (rc == STORE_ENOTFOUND && conninfo != NULL)
        fprintf(stderr,
                "outpost-admin: no Outpost store in this database (create it with: "
                "outpost-admin --store ... init --schema FILE.sql --policy FILE)\n");
    else if (rc == STORE_ENOTFOUND)
        fprintf(stderr,
                "outpost-admin: no store at %s (create it with: outpost-admin --store %s "
                "init --schema FILE.sql --policy FILE)\n",
                redact(path, shown, sizeof shown), shown);
    else
        fprintf(stderr, "outpost-admin: %s\n", redact(err, shown, sizeof shown));
    return rc == STORE_EINVAL ? EXIT_REFUSED : EXIT_STORE;
}

/* The audit key's path: --audit-key, or the store's path with ".audit-key". */
static const char *key_path(const char *store_path, char *buf, size_t size)
{
    if (audit_key_path != NULL)
        return audit_key_path;
    snprintf(buf, size, "%s%s", store_path, STORE_AUDIT_KEY_SUFFIX);
    return buf;
}

/* Loads the audit key and checks it against the store's log, before anything is changed. Only
 * init makes a key: a missing one is refused (a typo would otherwise start a new chain). */
static int load_audit_key(store *st, const char *path)
{
    char buf[4096];
    const char *file = key_path(path, buf, sizeof buf);
    struct stat sb;
    if (stat(file, &sb) != 0 && errno == ENOENT) {
        fprintf(stderr, "outpost-admin: audit key %s not found (only init makes one; check "
                        "--audit-key)\n", file);
        return EXIT_REFUSED;
    }
    int rc = store_audit_key_load(st, file);
    if (rc == STORE_OK)
        rc = store_audit_key_check(st);
    return rc == STORE_OK ? EXIT_OK : store_error(st, rc);
}

/* Opens the store and loads the audit key: what every command that writes or checks the audit
 * log needs. */
static int open_store_keyed(const char *path, store **out_st)
{
    int code = open_store(path, false, out_st);
    if (code == EXIT_OK)
        code = load_audit_key(*out_st, path);
    if (code != EXIT_OK) {
        store_close(*out_st);
        *out_st = NULL;
    }
    return code;
}

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* The audit row of an administrative act done from this command line: the actor is the
 * operating-system user running it ("os:NAME"), the address "local" (with the sudo caller when
 * there is one). The act is done already: a failed write is reported, exit 3. */
static int audit_act(store *st, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int audit_act(store *st, const char *action, const char *fmt, ...)
{
    char actor[64], address[64], target[256];
    const struct passwd *pw = getpwuid(geteuid());
    const char *sudo = getenv("SUDO_USER");
    va_list ap;

    if (pw != NULL && strlen(pw->pw_name) < sizeof actor - 3)
        snprintf(actor, sizeof actor, "os:%s", pw->pw_name);
    else
        snprintf(actor, sizeof actor, "os:uid=%u", (unsigned)geteuid());
    if (sudo != NULL && sudo[0] && geteuid() == 0 && strlen(sudo) < 32)
        snprintf(address, sizeof address, "local sudo=%s", sudo);
    else
        snprintf(address, sizeof address, "local");
    va_start(ap, fmt);
    int n = vsnprintf(target, sizeof target, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof target)
        memcpy(target + sizeof target - 4, "...", 4);
    int rc = store_audit_append(st, now_ms(), actor, action, target, address);
    if (rc == STORE_OK)
        return EXIT_OK;
    fprintf(stderr, "outpost-admin: done, but the audit log cannot be written: %s\n",
            store_errmsg(st));
    return EXIT_STORE;
}

/* "a,b,c" of n names, into out. */
static const char *join(const char *const *names, uint32_t n, char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < n && len < size; i++) {
        int w = snprintf(out + len, size - len, "%s%s", i ? "," : "", names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return out;
}

/* init makes the audit key unless one is there already (never overwritten). */
static int ensure_audit_key(const char *path)
{
    char buf[4096], err[512];
    const char *file = key_path(path, buf, sizeof buf);
    int rc = store_audit_key_create(file, err, sizeof err);
    if (rc == STORE_OK)
        printf("audit key created: %s (mode 0600; keep it from anyone who can write the store)\n",
               file);
    else if (rc == STORE_EEXISTS)
        printf("audit key kept: %s\n", file);
    else
        fprintf(stderr, "outpost-admin: %s\n", err);
    return rc == STORE_OK || rc == STORE_EEXISTS ? EXIT_OK : EXIT_STORE;
}

/* Watch rules are checked against the new schema before anything is changed. */
static int check_watch(const char *schema, const char *policy, const char *watch)
{
    char err[512];
    int rc = store_watch_check(schema, policy, watch, err, sizeof err);
    if (rc == STORE_OK)
        return EXIT_OK;
    fprintf(stderr, "outpost-admin: watch rules: %s\n", err);
    return exit_for(rc);
}

/* Says what became of the rules given (kept inside the schema's transaction) and audits a
 * change. */
static int report_watch(store *st, bool changed)
{
    if (!changed) {
        printf("watch rules unchanged\n");
        return EXIT_OK;
    }
    int code = audit_act(st, "watch.set", "%s", "watch rules replaced");
    if (code == EXIT_OK)
        printf("watch rules set\n");
    return code;
}

/* An upgrade without forms while the store has some would remove every form on every device:
 * refused unless drop (--drop-forms). *out_dropped is how many go. */
static int guard_forms_drop(store *st, const admin_forms *forms, bool drop, size_t *out_dropped)
{
    char names[512];
    size_t n = 0;
    *out_dropped = 0;
    if (forms->dir != NULL)
        return EXIT_OK;
    int rc = store_forms_tables(st, names, sizeof names, &n);
    if (rc != STORE_OK)
        return store_error(st, rc);
    if (n > 0 && !drop) {
        fprintf(stderr,
                "outpost-admin: the current schema has %zu form%s (%s) and this package has "
                "none: the upgrade would remove %s from every device. Put the forms/ directory "
                "beside the schema (or name it with --forms DIR), or pass --drop-forms to remove "
                "them.\n",
                n, n == 1 ? "" : "s", names, n == 1 ? "it" : "them all");
        return EXIT_REFUSED;
    }
    *out_dropped = n;
    return EXIT_OK;
}

/* Every check of init or upgrade, nothing applied: init's on a store in memory, so no file is
 * made; upgrade's against the store's schema, rolled back. *out_version is the current
 * version (upgrade), *out_dropped how many forms the upgrade removes. Prints only failures. */
/* PostgreSQL cuts a name longer than 63 bytes short (two long names may then clash): on a
 * PostgreSQL store such a table, column or index name is refused before anything is made. */
#define POSTGRESQL_NAME_MAX 63

static int check_name_length(const char *what, const char *name)
{
    if (strlen(name) <= POSTGRESQL_NAME_MAX)
        return EXIT_OK;
    fprintf(stderr, "outpost-admin: %s name %.20s... is %zu bytes: a PostgreSQL store takes "
                    "names of at most %d bytes\n",
            what, name, strlen(name), POSTGRESQL_NAME_MAX);
    return EXIT_REFUSED;
}

static int check_postgresql_names(const char *path, const char *schema, const char *policy)
{
    schema_def def;
    char err[512];
    if (postgresql_conninfo(path) == NULL)
        return EXIT_OK;
    if (schema_parse(schema, policy, &def, err, sizeof err) != STORE_OK) {
        schema_def_free(&def);
        return EXIT_OK; /* the package's own check says what is wrong */
    }
    int code = EXIT_OK;
    for (uint32_t t = 0; t < def.n_tables && code == EXIT_OK; t++) {
        code = check_name_length("table", def.tables[t].name);
        for (uint32_t c = 0; c < def.tables[t].n_cols && code == EXIT_OK; c++)
            code = check_name_length("column", def.tables[t].cols[c].name);
    }
    for (uint32_t i = 0; i < def.n_indexes && code == EXIT_OK; i++)
        code = check_name_length("index", def.index_names[i]);
    schema_def_free(&def);
    return code;
}

static int validate_package(const char *path, bool init, const char *schema, const char *policy,
                            const admin_forms *forms, const char *watch, bool drop_forms,
                            uint32_t *out_version, size_t *out_dropped)
{
    store *st = NULL;
    int code = check_postgresql_names(path, schema, policy);
    if (code != EXIT_OK)
        return code;
    code = open_store(init ? ":memory:" : path, init, &st);
    *out_version = 0;
    *out_dropped = 0;
    if (code == EXIT_OK && !init) {
        proto_buf buf = {0};
        int rc = store_schema_encode(st, &buf, out_version);
        proto_buf_free(&buf);
        if (rc != STORE_OK)
            code = store_error(st, rc);
    }
    if (code == EXIT_OK && !init)
        code = guard_forms_drop(st, forms, drop_forms, out_dropped);
    if (code == EXIT_OK) {
        int rc = store_schema_package(st, init, true, schema, policy, forms->files,
                                      forms->n_files, watch);
        if (rc != STORE_OK)
            code = store_error(st, rc);
    }
    store_close(st);
    return code;
}

/* What the package's forms come to, after "applied" or "valid". */
static void print_forms(const admin_forms *forms, size_t dropped, const char *schema_path)
{
    if (forms->dir != NULL)
        printf("forms: %zu from %s\n", forms->n_files, forms->dir);
    else if (dropped > 0)
        printf("forms: none (%zu removed)\n", dropped);
    else
        printf("forms: none (no forms/ directory beside %s)\n", schema_path);
}

/* init --check and upgrade --check: every check of the real command, nothing applied. */
static int check_package(const char *path, bool init, const char *schema, const char *policy,
                         const admin_forms *forms, const char *watch, bool drop_forms,
                         const char *schema_path)
{
    uint32_t version = 0;
    size_t dropped = 0;
    int code = validate_package(path, init, schema, policy, forms, watch, drop_forms, &version,
                                &dropped);
    if (code != EXIT_OK)
        return code;
    if (init)
        printf("package valid as a new store's schema (nothing applied)\n");
    else
        printf("package valid as an upgrade of schema version %u (nothing applied)\n", version);
    print_forms(forms, dropped, schema_path);
    return EXIT_OK;
}

/* init and upgrade share their arguments. */
static int cmd_schema(const char *path, int argc, char **argv, bool init)
{
    const char *usage = init ? usage_init : usage_upgrade;
    const char *schema_path = NULL, *policy_path = NULL, *forms_dir = NULL, *watch_path = NULL;
    bool check = false, drop_forms = false;
    for (int i = 0; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc) {
            schema_path = argv[++i];
        } else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
            policy_path = argv[++i];
        } else if (strcmp(argv[i], "--forms") == 0 && i + 1 < argc) {
            forms_dir = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (!init && strcmp(argv[i], "--drop-forms") == 0) {
            drop_forms = true;
        } else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            watch_path = argv[++i];
        } else {
            return usage_error(usage, "unexpected argument", argv[i]);
        }
    }
    if (schema_path == NULL || policy_path == NULL)
        return usage_error(usage, "both --schema FILE.sql and --policy FILE are required", NULL);
    char *schema = read_file(schema_path);
    char *policy = schema ? read_file(policy_path) : NULL;
    admin_forms forms = {0};
    bool forms_read = policy && admin_forms_read(forms_dir, schema_path, read_file, &forms) == 0;
    char *watch = forms_read && watch_path ? read_file(watch_path) : NULL;
    bool watch_read = forms_read && (watch != NULL || watch_path == NULL);
    /* Watch rules are checked against the new schema before anything is changed. */
    int watch_code = watch ? check_watch(schema, policy, watch) : EXIT_OK;
    if (check && watch_read) {
        int code = watch_code == EXIT_OK ? check_package(path, init, schema, policy, &forms, watch,
                                                         drop_forms, schema_path)
                                         : watch_code;
        admin_forms_free(&forms);
        free(schema);
        free(policy);
        free(watch);
        return code;
    }
    /* A refused init leaves nothing behind: the whole package is checked on a store in memory
     * before the store file and the audit key are made. */
    uint32_t before = 0;
    size_t dropped = 0;
    bool watch_changed = false;
    int code = !(schema && policy && watch_read) ? EXIT_USAGE : watch_code;
    if (code == EXIT_OK && init)
        code = validate_package(path, true, schema, policy, &forms, watch, false, &before,
                                &dropped);
    else if (code == EXIT_OK)
        code = check_postgresql_names(path, schema, policy);
    store *st = NULL;
    if (code == EXIT_OK)
        code = open_store(path, init, &st);
    /* init makes (or keeps) the key once its schema is committed: a refused or interrupted init
     * leaves no key behind. */
    if (code == EXIT_OK && !init)
        code = load_audit_key(st, path);
    if (code == EXIT_OK && !init) {
        proto_buf buf = {0};
        int rc = store_schema_encode(st, &buf, &before);
        proto_buf_free(&buf);
        if (rc != STORE_OK)
            code = store_error(st, rc);
    }
    if (code == EXIT_OK && !init)
        code = guard_forms_drop(st, &forms, drop_forms, &dropped);
    if (code == EXIT_OK) {
        char *kept = NULL; /* the watch rules before, to say whether they changed */
        int rc = watch ? store_watch_json(st, &kept) : STORE_OK;
        if (rc == STORE_OK)
            rc = store_schema_package(st, init, false, schema, policy, forms.files,
                                      forms.n_files, watch);
        watch_changed = rc == STORE_OK && watch && (kept == NULL || strcmp(kept, watch) != 0);
        free(kept);
        if (rc != STORE_OK) {
            code = store_error(st, rc);
        } else if (init && (code = ensure_audit_key(path)) == EXIT_OK &&
                   (code = load_audit_key(st, path)) != EXIT_OK) {
            /* the schema is in; its audit row cannot be written */
        } else if (code == EXIT_OK) {
            proto_buf buf = {0};
            uint32_t version = 0;
            rc = store_schema_encode(st, &buf, &version);
            proto_buf_free(&buf);
            if (rc != STORE_OK)
                code = store_error(st, rc);
            else if (!init && version == before)
                printf("schema unchanged (version %u)\n", version);
            else if ((code = audit_act(st, init ? "schema.init" : "schema.upgrade", "version %u",
                                       version)) == EXIT_OK)
                printf("schema version %u %s\n", version, init ? "initialised" : "applied");
            if (code == EXIT_OK)
                print_forms(&forms, dropped, schema_path);
        }
    }
    if (code == EXIT_OK && watch)
        code = report_watch(st, watch_changed);
    if (code == EXIT_OK && init && postgresql_conninfo(path) != NULL) {
        int rc = store_create_commit(st);
        if (rc != STORE_OK)
            code = store_error(st, rc);
    }
    store_close(st);
    admin_forms_free(&forms);
    free(schema);
    free(policy);
    free(watch);
    return code;
}

static int cmd_list(const char *path, const char *what);
static int cmd_lifecycle(const char *path, bool worker, int argc, char **argv);
static bool is_lifecycle_verb(const char *verb, bool worker);

static int cmd_team(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_team, stdout);
        return EXIT_OK;
    }
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cmd_list(path, "team");
    if (argc < 2 || strcmp(argv[0], "add") != 0)
        return usage_error(usage_team, "expected: team add ID", NULL);
    const char *id = argv[1], *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_team, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage_team, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else {
            return usage_error(usage_team, "unexpected argument", argv[i]);
        }
    }
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code == EXIT_OK) {
        int rc = store_team_add(st, id, name);
        if (rc != STORE_OK)
            code = store_error(st, rc);
        else if ((code = audit_act(st, "team.add", "%s", id)) == EXIT_OK)
            printf("team %s added\n", id);
    }
    store_close(st);
    return code;
}

static int cmd_worker(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_worker, stdout);
        return EXIT_OK;
    }
    if (argc >= 1 && is_lifecycle_verb(argv[0], true))
        return cmd_lifecycle(path, true, argc, argv);
    if (argc < 2 || strcmp(argv[0], "add") != 0)
        return usage_error(usage_worker, "expected: worker add ID --team T", NULL);
    const char *id = argv[1];
    const char *teams[MAX_TEAMS];
    uint32_t n_teams = 0;
    for (int i = 2; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_worker, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage_worker, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--team") == 0 && i + 1 < argc) {
            if (n_teams == MAX_TEAMS)
                return usage_error(usage_worker, "at most 64 teams per worker", NULL);
            teams[n_teams++] = argv[++i];
        } else {
            return usage_error(usage_worker, "unexpected argument", argv[i]);
        }
    }
    if (n_teams == 0)
        return usage_error(usage_worker, "a worker needs at least one --team", NULL);
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code == EXIT_OK) {
        int rc = store_worker_add(st, id, teams, n_teams);
        char list[256];
        if (rc != STORE_OK)
            code = store_error(st, rc);
        else if ((code = audit_act(st, "worker.add", "%s teams=%s", id,
                                   join(teams, n_teams, list, sizeof list))) == EXIT_OK)
            printf("worker %s added\n", id);
    }
    store_close(st);
    return code;
}

/* Prints a QR code with two modules per character row (Unicode half blocks), light modules
 * drawn, so it shows as dark-on-light on the usual dark terminal. */
static int print_qr(const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        fprintf(stderr, "outpost-admin: cannot make the QR code: %s\n", strerror(errno));
        return EXIT_STORE;
    }
    const int quiet = 2;
    int size = qr->width + 2 * quiet;
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; x++) {
            int mx = x - quiet, my = y - quiet;
            bool top_dark = mx >= 0 && my >= 0 && mx < qr->width && my < qr->width &&
                            (qr->data[my * qr->width + mx] & 1);
            bool bottom_dark = mx >= 0 && my + 1 >= 0 && mx < qr->width && my + 1 < qr->width &&
                               (qr->data[(my + 1) * qr->width + mx] & 1);
            const char *cell = !top_dark && !bottom_dark ? "\xe2\x96\x88" /* full block */
                               : !top_dark               ? "\xe2\x96\x80" /* upper half */
                               : !bottom_dark            ? "\xe2\x96\x84" /* lower half */
                                                         : " ";
            fputs(cell, stdout);
        }
        fputc('\n', stdout);
    }
    QRcode_free(qr);
    return EXIT_OK;
}

/* HOST:PORT, a DNS name or address without spaces, slashes or query characters. */
static bool server_valid(const char *server)
{
    size_t n = strlen(server);
    if (n == 0 || n > 200 || strchr(server, ':') == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = server[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        if (!ok)
            return false;
    }
    return true;
}

/* The SHA-256 of the first certificate in a PEM file, as 64 lowercase hex digits: the pin a
 * device checks the server against during enrollment (the same bytes it sees in TLS). */
static int certificate_pin(const char *pem_path, char out_hex[2 * 32 + 1])
{
    mbedtls_x509_crt crt;
    unsigned char digest[32];
    mbedtls_x509_crt_init(&crt);
    int rc = mbedtls_x509_crt_parse_file(&crt, pem_path);
    if (rc == 0)
        rc = mbedtls_sha256(crt.raw.p, crt.raw.len, digest, 0);
    mbedtls_x509_crt_free(&crt);
    if (rc != 0) {
        fprintf(stderr, "outpost-admin: cannot read a certificate from %s (mbedTLS -0x%04x)\n",
                pem_path, (unsigned)-rc);
        return -1;
    }
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out_hex + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

static int cmd_enroll(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_enroll, stdout);
        return EXIT_OK;
    }
    if (argc < 1 || argv[0][0] == '-')
        return usage_error(usage_enroll, "expected: enroll WORKER", NULL);
    const char *worker = argv[0], *server = NULL, *cert = NULL;
    long hours = 24;
    for (int i = 1; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_enroll, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage_enroll, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--expires") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            hours = strtol(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != 0 || hours < 1 || hours > MAX_EXPIRES_HOURS)
                return usage_error(usage_enroll,
                                   "--expires takes a whole number of hours from 1 to 720, "
                                   "not",
                                   argv[i]);
        } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            server = argv[++i];
            for (const char *scheme = strstr(server, "://"); scheme != NULL; scheme = NULL)
                server = scheme + 3;
            if (!server_valid(server))
                return usage_error(usage_enroll, "--server takes HOST:PORT, not", argv[i]);
        } else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
            cert = argv[++i];
        } else {
            return usage_error(usage_enroll, "unexpected argument", argv[i]);
        }
    }
    if (cert && !server)
        return usage_error(usage_enroll, "--cert goes with --server HOST:PORT", NULL);
    char pin[2 * 32 + 1] = "";
    if (cert && certificate_pin(cert, pin) != 0)
        return EXIT_USAGE;
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code != EXIT_OK)
        return code;
    char enroll_code[STORE_CODE_SIZE];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    int rc =
        store_enroll_code_create(st, worker, now_ms, (uint64_t)hours * 3600u * 1000u, enroll_code);
    if (rc != STORE_OK)
        code = store_error(st, rc);
    else
        code = audit_act(st, "enroll.code", "%s expires_h=%ld", worker, hours);
    store_close(st);
    if (code != EXIT_OK)
        return code;
    time_t expires = (time_t)(now.tv_sec + hours * 3600);
    struct tm tm_utc;
    char when[32];
    gmtime_r(&expires, &tm_utc);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm_utc);
    printf("enrollment code for worker %s (single use, expires %s):\n\n    %s\n\n", worker, when,
           enroll_code);
    char qr_text[400];
    if (pin[0])
        printf("server certificate pin (SHA-256): %s\n\n", pin);
    if (server != NULL) {
        /* Also as text: a field laptop pastes it into `outpost enroll URI`. */
        snprintf(qr_text, sizeof qr_text, "outpost://%s/enroll?code=%s%s%s", server, enroll_code,
                 pin[0] ? "&pin=" : "", pin);
        printf("enrollment URI: %s\n\n", qr_text);
    } else
        snprintf(qr_text, sizeof qr_text, "%s", enroll_code);
    return print_qr(qr_text);
}

static void format_time(uint64_t ms, char *out, size_t out_size)
{
    if (ms == 0) {
        snprintf(out, out_size, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000u);
    struct tm tm_utc;
    gmtime_r(&t, &tm_utc);
    strftime(out, out_size, "%Y-%m-%d %H:%M:%S", &tm_utc);
}

static int print_device(const store_device_row *row, void *user_data)
{
    const char *only_worker = user_data;
    char seen[32];
    if (only_worker != NULL && strcmp(row->worker_id, only_worker) != 0)
        return 0;
    format_time(row->last_seen_ms, seen, sizeof seen);
    printf("%-36s  %-16s  %-16s  %-19s  %s\n", row->device_id, row->worker_id,
           row->name[0] ? row->name : "-", seen,
           row->revoked ? (row->wipe ? "revoked+wipe" : "revoked") : "active");
    return 0;
}

static int cmd_devices(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_devices, stdout);
        return EXIT_OK;
    }
    const char *worker = NULL;
    if (argc == 2 && strcmp(argv[0], "--worker") == 0)
        worker = argv[1];
    else if (argc > 0)
        return usage_error(usage_devices, "unexpected argument", argv[0]);
    store *st = NULL;
    int code = open_store(path, false, &st);
    if (code != EXIT_OK)
        return code;
    printf("%-36s  %-16s  %-16s  %-19s  %s\n", "DEVICE", "WORKER", "NAME", "LAST SYNC (UTC)",
           "STATE");
    int rc = store_device_list(st, print_device, (void *)worker);
    if (rc != STORE_OK)
        code = store_error(st, rc);
    store_close(st);
    return code;
}

static int cmd_revoke(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_revoke, stdout);
        return EXIT_OK;
    }
    if (argc < 1 || argv[0][0] == '-')
        return usage_error(usage_revoke, "expected: revoke DEVICE", NULL);
    bool wipe = false;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_revoke, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--wipe") == 0) {
            wipe = true;
        } else {
            return usage_error(usage_revoke, "unexpected argument", argv[i]);
        }
    }
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code != EXIT_OK)
        return code;
    int rc = store_device_revoke(st, argv[0], wipe);
    if (rc != STORE_OK)
        code = store_error(st, rc);
    else if ((code = audit_act(st, "device.revoke", "%s%s", argv[0], wipe ? " wipe" : "")) ==
             EXIT_OK)
        printf("device %s revoked%s\n", argv[0], wipe ? "; it will be told to wipe" : "");
    store_close(st);
    return code;
}

/* Reads one line (without its newline) of at most size - 1 bytes from fd. -1 when longer or
 * unreadable. */
static int read_line_fd(int fd, char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0)
            return -1;
        if (r == 0 || c == '\n')
            break;
        if (n + 1 >= size)
            return -1;
        buf[n++] = c;
    }
    buf[n] = 0;
    if (n > 0 && buf[n - 1] == '\r')
        buf[n - 1] = 0;
    return 0;
}

/* Asks on the terminal with echo off. */
static int prompt_password(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    int fd = STDIN_FILENO;
    bool restore = false;
    int rc;

    fputs(prompt, stderr);
    fflush(stderr);
    if (isatty(fd) && tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    rc = read_line_fd(fd, buf, size);
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    return rc;
}

/* A new password: the first line from fd, or asked twice on the terminal. */
static int read_new_password(int fd, char *pw, size_t size)
{
    char again[STORE_PASSWORD_MAX + 2];

    if (fd >= 0) {
        if (read_line_fd(fd, pw, size) != 0) {
            fprintf(stderr, "outpost-admin: cannot read a password of at most %u characters "
                            "from file descriptor %d\n", STORE_PASSWORD_MAX, fd);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    if (prompt_password("password: ", pw, size) != 0 ||
        prompt_password("again: ", again, sizeof again) != 0) {
        fprintf(stderr, "outpost-admin: cannot read the password\n");
        return EXIT_USAGE;
    }
    bool differ = strcmp(pw, again) != 0;
    explicit_bzero(again, sizeof again);
    if (differ) {
        fprintf(stderr, "outpost-admin: the passwords differ\n");
        explicit_bzero(pw, size);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_user_add(const char *path, int argc, char **argv)
{
    const char *name = argv[1];
    const char *teams[MAX_TEAMS];
    uint32_t n_teams = 0;
    int role = 0;
    int fd = -1;
    char pw[STORE_PASSWORD_MAX + 2];
    int code;

    for (int i = 2; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_user, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage_user, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--team") == 0 && i + 1 < argc) {
            if (n_teams == MAX_TEAMS)
                return usage_error(usage_user, "at most 64 teams per account", NULL);
            teams[n_teams++] = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "supervisor") == 0)
                role = STORE_ROLE_SUPERVISOR;
            else if (strcmp(argv[i], "admin") == 0)
                role = STORE_ROLE_ADMIN;
            else
                return usage_error(usage_user, "role must be supervisor or admin", argv[i]);
        } else if (strcmp(argv[i], "--password-fd") == 0 && i + 1 < argc) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 0 || v > 1024)
                return usage_error(usage_user, "bad file descriptor", argv[i]);
            fd = (int)v;
        } else {
            return usage_error(usage_user, "unexpected argument", argv[i]);
        }
    }
    if (role == 0)
        return usage_error(usage_user, "--role supervisor|admin is required", NULL);
    code = read_new_password(fd, pw, sizeof pw);
    if (code != EXIT_OK)
        return code;
    store *st = NULL;
    code = open_store_keyed(path, &st);
    if (code == EXIT_OK) {
        int rc = store_user_add(st, name, (store_role)role, teams, n_teams, pw);
        char list[256];
        if (rc != STORE_OK)
            code = store_error(st, rc);
        else if ((code = audit_act(st, "user.add", "%s role=%s teams=%s", name,
                                   role == STORE_ROLE_ADMIN ? "admin" : "supervisor",
                                   join(teams, n_teams, list, sizeof list))) == EXIT_OK)
            printf("%s %s added\n", role == STORE_ROLE_ADMIN ? "admin" : "supervisor", name);
    }
    explicit_bzero(pw, sizeof pw);
    store_close(st);
    return code;
}

static int cmd_user(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_user, stdout);
        fputs(usage_people, stdout);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[0], "add") == 0 && argv[1][0] != '-')
        return cmd_user_add(path, argc, argv);
    if (argc >= 1 && is_lifecycle_verb(argv[0], false))
        return cmd_lifecycle(path, false, argc, argv);
    if (argc == 2 && strcmp(argv[0], "unlock") == 0) {
        store *st = NULL;
        int code = open_store_keyed(path, &st);
        if (code == EXIT_OK) {
            int rc = store_user_unlock(st, argv[1]);
            if (rc != STORE_OK)
                code = store_error(st, rc);
            else if ((code = audit_act(st, "user.unlock", "%s", argv[1])) == EXIT_OK)
                printf("account %s unlocked\n", argv[1]);
        }
        store_close(st);
        return code;
    }
    return usage_error(usage_user, "expected: user add NAME --role ROLE, or user unlock NAME",
                       NULL);
}

/* ---- People over their lifetime ------------------------------------------------------------ */

static int print_person(const store_person *p, void *user_data)
{
    const char *what = user_data;
    if (strcmp(what, "team") == 0)
        printf("%-20s  %-24s  %u  %s\n", p->id, p->name[0] ? p->name : "-", p->n_devices,
               p->teams[0] ? p->teams : "-");
    else if (strcmp(what, "worker") == 0)
        printf("%-20s  %-8s  %-7u  %s\n", p->id, p->disabled ? "disabled" : "active",
               p->n_devices, p->teams[0] ? p->teams : "-");
    else
        printf("%-20s  %-10s  %-8s  %s\n", p->id,
               p->role == STORE_ROLE_ADMIN ? "admin" : "supervisor",
               p->disabled ? "disabled" : "active", p->teams[0] ? p->teams : "-");
    return 0;
}

static int cmd_list(const char *path, const char *what)
{
    store *st = NULL;
    int code = open_store(path, false, &st);
    int rc;

    if (code != EXIT_OK)
        return code;
    if (strcmp(what, "team") == 0) {
        printf("%-20s  %-24s  %s  %s\n", "TEAM", "NAME", "WORKERS", "");
        rc = store_team_list(st, print_person, (void *)what);
    } else if (strcmp(what, "worker") == 0) {
        printf("%-20s  %-8s  %-7s  %s\n", "WORKER", "STATE", "DEVICES", "TEAMS");
        rc = store_worker_list(st, print_person, (void *)what);
    } else {
        printf("%-20s  %-10s  %-8s  %s\n", "ACCOUNT", "ROLE", "STATE", "TEAMS");
        rc = store_user_list(st, print_person, (void *)what);
    }
    if (rc != STORE_OK)
        code = store_error(st, rc);
    store_close(st);
    return code;
}

/* worker|user VERB ID [--team T ...] [--password-fd N] */
static int cmd_lifecycle(const char *path, bool worker, int argc, char **argv)
{
    const char *verb = argv[0], *id = argc >= 2 ? argv[1] : NULL;
    const char *teams[MAX_TEAMS];
    uint32_t n_teams = 0;
    int fd = -1;
    bool takes_teams = strcmp(verb, "move") == 0 || strcmp(verb, "teams") == 0;
    bool takes_fd = strcmp(verb, "reset-password") == 0;

    if (strcmp(verb, "list") == 0)
        return argc == 1 ? cmd_list(path, worker ? "worker" : "user")
                         : usage_error(usage_people, "unexpected argument", argv[1]);
    if (id == NULL || id[0] == '-')
        return usage_error(usage_people, worker ? "expected: worker VERB ID" :
                                                  "expected: user VERB NAME", NULL);
    for (int i = 2; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_people, "missing value after", argv[i]);
        if (takes_teams && strcmp(argv[i], "--team") == 0) {
            if (n_teams == MAX_TEAMS)
                return usage_error(usage_people, "at most 64 teams", NULL);
            teams[n_teams++] = argv[++i];
        } else if (takes_fd && strcmp(argv[i], "--password-fd") == 0) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 0 || v > 1024)
                return usage_error(usage_people, "bad file descriptor", argv[i]);
            fd = (int)v;
        } else {
            return usage_error(usage_people, "unexpected argument", argv[i]);
        }
    }
    if (strcmp(verb, "move") == 0 && n_teams == 0)
        return usage_error(usage_people, "move needs at least one --team", NULL);

    char pw[STORE_PASSWORD_MAX + 2] = "";
    if (takes_fd) {
        int code = read_new_password(fd, pw, sizeof pw);
        if (code != EXIT_OK)
            return code;
    }
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code != EXIT_OK) {
        explicit_bzero(pw, sizeof pw);
        return code;
    }
    const char *noun = worker ? "worker" : "user";
    char action[32], list[256];
    uint32_t n_revoked = 0;
    int rc;
    snprintf(action, sizeof action, "%s.%s", noun, verb);
    if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
        bool off = strcmp(verb, "disable") == 0;
        rc = worker ? store_worker_set_disabled(st, id, off) : store_user_set_disabled(st, id, off);
        if (rc == STORE_OK && (code = audit_act(st, action, "%s", id)) == EXIT_OK)
            printf("%s %s %sd\n", worker ? "worker" : "account", id, verb);
    } else if (strcmp(verb, "remove") == 0) {
        rc = worker ? store_worker_remove(st, id, &n_revoked) : store_user_remove(st, id);
        if (rc == STORE_OK && worker &&
            (code = audit_act(st, action, "%s devices_revoked=%u", id, n_revoked)) == EXIT_OK)
            printf("worker %s removed; %u device%s revoked and told to wipe\n", id, n_revoked,
                   n_revoked == 1 ? "" : "s");
        else if (rc == STORE_OK && !worker && (code = audit_act(st, action, "%s", id)) == EXIT_OK)
            printf("account %s removed\n", id);
    } else if (takes_teams && (strcmp(verb, "move") == 0) == worker) {
        rc = worker ? store_worker_set_teams(st, id, teams, n_teams)
                    : store_user_set_teams(st, id, teams, n_teams);
        join(teams, n_teams, list, sizeof list);
        if (rc == STORE_OK &&
            (code = audit_act(st, worker ? "worker.move" : "user.teams", "%s teams=%s", id,
                              list)) == EXIT_OK)
            printf("%s %s now in teams %s\n", worker ? "worker" : "account", id,
                   list[0] ? list : "(none)");
    } else if (takes_fd && !worker) {
        rc = store_user_reset_password(st, id, pw);
        if (rc == STORE_OK && (code = audit_act(st, "user.password_reset", "%s", id)) == EXIT_OK)
            printf("account %s has a new password\n", id);
    } else {
        store_close(st);
        return usage_error(usage_people, "unknown command", verb);
    }
    explicit_bzero(pw, sizeof pw);
    if (rc != STORE_OK)
        code = store_error(st, rc);
    store_close(st);
    return code;
}

static bool is_lifecycle_verb(const char *verb, bool worker)
{
    static const char *const worker_verbs[] = {"list", "disable", "enable", "remove", "move"};
    static const char *const user_verbs[] = {"list",   "disable", "enable",
                                             "remove", "teams",   "reset-password"};
    const char *const *verbs = worker ? worker_verbs : user_verbs;
    size_t n = worker ? 5 : 6;
    for (size_t i = 0; i < n; i++)
        if (strcmp(verb, verbs[i]) == 0)
            return true;
    return false;
}

/* Audit text came from the network: control characters are shown as '?' so that nothing in
 * it can drive the terminal. */
static void print_field(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int print_audit_row(const store_audit_row *row, void *user_data)
{
    char when[32];
    (void)user_data;
    format_time(row->time_ms, when, sizeof when);
    printf("%lld\t%s\t", (long long)row->id, when);
    print_field(row->address);
    putchar('\t');
    print_field(row->actor);
    putchar('\t');
    print_field(row->action);
    putchar('\t');
    print_field(row->target);
    if (row->ids[0]) {
        fputs("\tids=", stdout);
        print_field(row->ids);
    }
    putchar('\n');
    return 0;
}

/* Checks every checkpoint line in file (anything before "outpost-audit-checkpoint" on a line,
 * such as a log's time stamp, is skipped). Returns an exit code; *out_found counts lines. */
static int verify_checkpoints(store *st, const char *file, unsigned *out_found)
{
    static const char marker[] = "outpost-audit-checkpoint ";
    char *text = read_file(file);
    int code = EXIT_OK;

    if (text == NULL)
        return EXIT_USAGE;
    for (char *line = text, *next; line != NULL && (code == EXIT_OK || code == EXIT_REFUSED);
         line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = 0;
        char *cp = strstr(line, marker);
        if (cp == NULL)
            continue;
        size_t n = strlen(cp);
        while (n > 0 && (cp[n - 1] == '\r' || cp[n - 1] == ' '))
            cp[--n] = 0;
        int64_t bad = 0;
        int rc = store_audit_verify_checkpoint(st, cp, &bad);
        (*out_found)++;
        if (rc == STORE_ETAMPERED) {
            fprintf(stderr, "outpost-admin: TAMPERED: first bad row %lld: %s (%s)\n",
                    (long long)bad, store_errmsg(st), file);
            code = EXIT_REFUSED;
        } else if (rc != STORE_OK) {
            code = store_error(st, rc);
        }
    }
    free(text);
    return code;
}

static int append_line(const char *file, const char *line)
{
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    size_t n = strlen(line);
    bool ok = fd >= 0 && write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok)
        fprintf(stderr, "outpost-admin: cannot append to %s: %s\n", file, strerror(e));
    return ok ? EXIT_OK : EXIT_STORE;
}

static int cmd_audit(const char *path, int argc, char **argv)
{
    enum { MAX_CHECKPOINT_FILES = 16 };
    uint32_t limit = 50;
    const char *files[MAX_CHECKPOINT_FILES], *append = NULL;
    unsigned n_files = 0;
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_audit, stdout);
        return EXIT_OK;
    }
    if (argc < 1 || (strcmp(argv[0], "verify") != 0 && strcmp(argv[0], "list") != 0 &&
                     strcmp(argv[0], "checkpoint") != 0))
        return usage_error(usage_audit, "expected: audit verify, audit checkpoint or audit list",
                           NULL);
    bool verify = strcmp(argv[0], "verify") == 0, list = strcmp(argv[0], "list") == 0;
    for (int i = 1; i < argc; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_audit, "missing value after", argv[i]);
        if (list && strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 1 || v > 100000)
                return usage_error(usage_audit, "--limit takes 1 to 100000", argv[i]);
            limit = (uint32_t)v;
        } else if (verify && strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc) {
            if (n_files == MAX_CHECKPOINT_FILES)
                return usage_error(usage_audit, "at most 16 --checkpoint files", NULL);
            files[n_files++] = argv[++i];
        } else if (!verify && !list && strcmp(argv[i], "--append") == 0 && i + 1 < argc) {
            append = argv[++i];
        } else {
            return usage_error(usage_audit, "unexpected argument", argv[i]);
        }
    }
    store *st = NULL;
    int code = list ? open_store(path, false, &st) : open_store_keyed(path, &st);
    if (code != EXIT_OK)
        return code;
    if (verify) {
        uint64_t n_rows = 0;
        int64_t bad = 0;
        unsigned found = 0;
        int rc = store_audit_verify(st, &n_rows, &bad);
        if (rc == STORE_ETAMPERED) {
            fprintf(stderr, "outpost-admin: TAMPERED: first bad row %lld: %s\n", (long long)bad,
                    store_errmsg(st));
            code = EXIT_REFUSED;
        } else if (rc != STORE_OK) {
            code = store_error(st, rc);
        }
        /* Every checkpoint is checked even after a failure: each says what it saw. */
        for (unsigned f = 0; f < n_files && (code == EXIT_OK || code == EXIT_REFUSED); f++) {
            unsigned before = found;
            int file_code = verify_checkpoints(st, files[f], &found);
            if (file_code == EXIT_OK && found == before) {
                fprintf(stderr, "outpost-admin: no audit checkpoint line in %s\n", files[f]);
                file_code = EXIT_USAGE;
            }
            if (file_code != EXIT_OK && (code == EXIT_OK || file_code != EXIT_REFUSED))
                code = file_code;
        }
        if (code == EXIT_OK)
            printf("audit log verified: %llu rows, keyed chain and seal intact, %u checkpoint%s "
                   "matched\n",
                   (unsigned long long)n_rows, found, found == 1 ? "" : "s");
    } else if (list) {
        int rc = store_audit_list(st, 0, limit, print_audit_row, NULL);
        if (rc != STORE_OK)
            code = store_error(st, rc);
    } else {
        char line[STORE_CHECKPOINT_LINE_MAX];
        uint64_t n_rows = 0;
        int rc = store_audit_checkpoint(st, now_ms(), line, &n_rows);
        if (rc != STORE_OK)
            code = store_error(st, rc);
        else if (append != NULL)
            code = append_line(append, line);
        if (code == EXIT_OK)
            printf("%s\n", line);
    }
    store_close(st);
    return code;
}

static int cmd_backup(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_backup, stdout);
        return EXIT_OK;
    }
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(usage_backup, "expected: backup FILE", NULL);
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code != EXIT_OK)
        return code;
    store_identity identity;
    int rc = store_identity_get(st, &identity);
    if (rc == STORE_OK)
        rc = store_backup(st, argv[0]);
    if (rc != STORE_OK) {
        code = store_error(st, rc);
    } else {
        printf("backup of store %s (epoch %llu) written to %s\n", identity.id,
               (unsigned long long)identity.epoch, argv[0]);
        /* A backup is a copy of every team's records: who made it, and where, is on record. */
        code = audit_act(st, "store.backup", "%s", argv[0]);
    }
    store_close(st);
    return code;
}

static int cmd_restore(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_restore, stdout);
        return EXIT_OK;
    }
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(usage_restore, "expected: restore FILE", NULL);
    char err[1024];
    store_restore_info info;
    int rc = store_restore(path, argv[0], &info, err, sizeof err);
    if (rc != STORE_OK) {
        fprintf(stderr, "outpost-admin: %s\n", err);
        return exit_for(rc);
    }
    printf("restored store %s from %s: epoch %llu (backup taken in epoch %llu), newest server "
           "sequence %llu (backup had %llu)\n",
           info.identity.id, argv[0], (unsigned long long)info.identity.epoch,
           (unsigned long long)info.backup_epoch, (unsigned long long)info.server_seq,
           (unsigned long long)info.backup_server_seq);
    if (info.n_schema_upgrades > 0)
        printf("schema upgrades made after the backup were applied again: %u\n",
               (unsigned)info.n_schema_upgrades);
    if (info.replaced_path[0])
        printf("the replaced store (epoch %llu) was kept as %s\n",
               (unsigned long long)info.replaced_epoch, info.replaced_path);
    /* The restored log ends where the backup's did: the restore itself is its next row. */
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code == EXIT_OK)
        code = audit_act(st, "store.restore", "from %s: epoch %llu, replaced store kept as %s",
                         argv[0], (unsigned long long)info.identity.epoch,
                         info.replaced_path[0] ? info.replaced_path : "(none)");
    store_close(st);
    return code;
}

static int cmd_restored(const char *path, int argc, char **argv)
{
    if (argc >= 1 && is_help(argv[0])) {
        fputs(usage_restored, stdout);
        return EXIT_OK;
    }
    bool moved = false, confirmed = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--moved") == 0)
            moved = true;
        else if (strcmp(argv[i], "--confirm-nothing-lost") == 0)
            confirmed = true;
        else
            return usage_error(usage_restored, "expected: restored [--moved "
                                               "--confirm-nothing-lost]", NULL);
    }
    if (confirmed && !moved)
        return usage_error(usage_restored, "--confirm-nothing-lost goes with --moved", NULL);
    if (moved && !confirmed) {
        /* The one choice here that can split devices from the store for good, silently. */
        fprintf(stderr,
                "outpost-admin: nothing changed. --moved keeps the epoch: devices will neither "
                "send again what they pushed nor pull again, so it is right only when this "
                "database holds every write outpostd accepted in the old place (pg_upgrade, a "
                "copy made with every outpostd stopped). If it came from a dump or a backup "
                "taken while outpostd served, a device that had pulled records the copy lacks "
                "would silently miss records written from now on: run "
                "restored without --moved (each device pulls once in full, nothing is lost). "
                "If nothing was lost, run: restored --moved --confirm-nothing-lost\n");
        return EXIT_REFUSED;
    }
    if (postgresql_conninfo(path) == NULL) {
        fprintf(stderr, "outpost-admin: restored is for a PostgreSQL store restored with "
                        "PostgreSQL's tools; a SQLite store is restored with restore FILE, which "
                        "starts the new epoch itself\n");
        return EXIT_REFUSED;
    }
    marking_restored = true;
    store *st = NULL;
    int code = open_store_keyed(path, &st);
    if (code != EXIT_OK)
        return code;
    char why[256];
    bool unmarked = store_restore_unmarked(st, why, sizeof why);
    store_restore_info info;
    int rc = store_mark_restored(st, moved, &info);
    if (rc != STORE_OK) {
        code = store_error(st, rc);
    } else {
        if (moved)
            printf("store %s recorded in its new place; epoch %llu kept\n", info.identity.id,
                   (unsigned long long)info.identity.epoch);
        else
            printf("store %s marked restored: epoch %llu (was %llu), newest server sequence "
                   "%llu; devices will send again what it lacks and pull again in full\n",
                   info.identity.id, (unsigned long long)info.identity.epoch,
                   (unsigned long long)info.replaced_epoch, (unsigned long long)info.server_seq);
        if (!unmarked)
            printf("(the database is where the store was last served: a base backup restored "
                   "in place, or nothing was restored)\n");
        if (!moved)
            printf("next: apply again upgrades, teams, workers and accounts made after the dump; "
                   "devices enrolled after it are unknown here and must be enrolled anew "
                   "(docs/operations.md, \"Devices enrolled after the dump\")\n");
        /* The restored log ends where the dump's did: marking it is its next row. */
        code = audit_act(st, moved ? "store.moved" : "store.restore", "%s: epoch %llu (was %llu)%s%s",
                         moved ? "moved" : "restored with PostgreSQL's tools",
                         (unsigned long long)info.identity.epoch,
                         (unsigned long long)info.replaced_epoch,
                         unmarked ? ", " : ", in the database where it was last served",
                         unmarked ? why : "");
    }
    store_close(st);
    return code;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int i = 1;
    /* Stores and everything made beside them are this user's alone (docs/operations.md). */
    umask(077);
    db_set_application_name("outpost-admin");
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("outpost-admin %s (build %s)\n", OUTPOST_VERSION_STRING, OUTPOST_BUILD_ID);
        return EXIT_OK;
    }
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (missing_value(i, argc, argv))
            return usage_error(usage_main, "missing value after", argv[i]);
        if (is_help(argv[i])) {
            fputs(usage_main, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--audit-key") == 0 && i + 1 < argc) {
            audit_key_path = argv[++i];
        } else {
            return usage_error(usage_main, "unknown option", argv[i]);
        }
    }
    if (i >= argc)
        return usage_error(usage_main, "no command given", NULL);
    const char *cmd = argv[i++];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    bool wants_help = sub_argc > 0 && is_help(sub_argv[0]);
    if (path == NULL && !wants_help)
        return usage_error(usage_main, "--store PATH is required", NULL);
    if (path != NULL && !wants_help && postgresql_conninfo(path) != NULL &&
        postgresql_conninfo(path)[0] == 0)
        return usage_error(usage_main,
                           "--store postgresql: needs a connection string (postgresql:CONNINFO "
                           "or a postgresql:// URI)",
                           NULL);
    if (path != NULL && postgresql_conninfo(path) == NULL &&
        (strstr(path, "host=") != NULL || strstr(path, "dbname=") != NULL))
        return usage_error(usage_main,
                           "--store names a SQLite file, but this looks like a PostgreSQL "
                           "connection string: write --store 'postgresql:host=... dbname=...' "
                           "(or a postgresql:// URI)",
                           NULL);
    if (postgresql_conninfo(path) != NULL && !wants_help) {
        static const char *const sqlite_only[] = {"backup", "restore"};
        for (size_t k = 0; k < sizeof sqlite_only / sizeof sqlite_only[0]; k++)
            if (strcmp(cmd, sqlite_only[k]) == 0) {
                fprintf(stderr,
                        "outpost-admin: %s runs only on a SQLite store so far (back up a "
                        "PostgreSQL store with PostgreSQL's tools: docs/operations.md, "
                        "\"PostgreSQL\")\n",
                        cmd);
                return EXIT_REFUSED;
            }
        if (audit_key_path == NULL) { /* one line: the usage text would bury it */
            fprintf(stderr, "outpost-admin: --audit-key FILE is required with a PostgreSQL store "
                            "(the file init wrote the audit key to)\n");
            return EXIT_USAGE;
        }
    }
    if (strcmp(cmd, "init") == 0)
        return cmd_schema(path, sub_argc, sub_argv, true);
    if (strcmp(cmd, "upgrade") == 0)
        return cmd_schema(path, sub_argc, sub_argv, false);
    if (strcmp(cmd, "team") == 0)
        return cmd_team(path, sub_argc, sub_argv);
    if (strcmp(cmd, "worker") == 0)
        return cmd_worker(path, sub_argc, sub_argv);
    if (strcmp(cmd, "enroll") == 0)
        return cmd_enroll(path, sub_argc, sub_argv);
    if (strcmp(cmd, "devices") == 0)
        return cmd_devices(path, sub_argc, sub_argv);
    if (strcmp(cmd, "revoke") == 0)
        return cmd_revoke(path, sub_argc, sub_argv);
    if (strcmp(cmd, "user") == 0)
        return cmd_user(path, sub_argc, sub_argv);
    if (strcmp(cmd, "audit") == 0)
        return cmd_audit(path, sub_argc, sub_argv);
    if (strcmp(cmd, "backup") == 0)
        return cmd_backup(path, sub_argc, sub_argv);
    if (strcmp(cmd, "restore") == 0)
        return cmd_restore(path, sub_argc, sub_argv);
    if (strcmp(cmd, "restored") == 0)
        return cmd_restored(path, sub_argc, sub_argv);
    return usage_error(usage_main, "unknown command", cmd);
}
