/*
 * outpost: the device command line, built only on liboutpost's public API. For field laptops,
 * demos and tests.
 *
 * Exit codes:
 *   0  success
 *   1  usage error (unknown command or option, missing argument)
 *   2  local error (the replica cannot be opened, bad SQL, disk full)
 *   3  offline: the server could not be reached; try again later
 *   4  refused for good: certificate mismatch, unknown or revoked device, bad enrollment code,
 *      schema problem, the device was wiped, or the server is another central store
 *   5  sync ran, but changes the server refused are waiting in quarantine ('outpost rejected')
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <outpost.h>
#include <outpost_build_id.h>

#include "field.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_LOCAL = 2,
    EXIT_OFFLINE = 3,
    EXIT_REFUSED = 4,
    EXIT_QUARANTINE = 5
};

/* Where the replica's key comes from. Never the command line: other users can read it in ps. */
typedef struct options {
    const char *db;
    uint32_t timeout_s;
    const char *key_file;  /* --key-file */
    int key_fd;            /* --key-fd, or -1 */
    int passphrase_fd;     /* --passphrase-fd, or -1 */
    bool create;           /* --create, or the command is enroll: a missing replica is made */
} options;

#define PASSPHRASE_MAX 1024
/* A new passphrase shorter than this is refused: Argon2id slows guessing, it cannot make a
 * four-letter word safe. */
#define PASSPHRASE_MIN 8

/* The secret read for one open, wiped as soon as the library has it. */
typedef struct cli_secret {
    uint8_t key[OUTPOST_KEY_BYTES];
    char passphrase[PASSPHRASE_MAX + 2];
    size_t passphrase_len;
    bool is_key;
} cli_secret;

static const char usage_text[] =
    "usage: outpost [--db PATH] [key option] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  enroll URL CODE (--pin HEX | --ca FILE) [--name LABEL]   enroll this device\n"
    "  enroll 'outpost://HOST:PORT/enroll?code=...&pin=...'      enroll from a QR code's text\n"
    "  exec SQL...       run statements in one transaction through the library (captured)\n"
    "  query SQL         print the rows of one read-only statement, tab-separated,\n"
    "                    text escaped (\\0 for NUL, \\t, \\n, \\\\), \\N for NULL\n"
    "  sync              sync once now, with progress on a terminal\n"
    "  watch             stay connected and sync automatically until interrupted\n"
    "  status            outbox, cursor, last sync, schema version, device id\n"
    "  conflicts         decisions the server took against this device's writes\n"
    "  passwd            change the replica's key or passphrase (--new-key-file FILE,\n"
    "                    --new-passphrase-fd N, or a prompt)\n"
    "  rejected [show ID | resubmit ID [COL=VALUE...] | discard ID]\n"
    "                    changes the server refused, kept with the values typed\n"
    "  field [--port N] [--worker ID] [--forms DIR]\n"
    "                    the field app: forms and records in a browser on this device\n"
    "\n"
    "options:\n"
    "  --db PATH         the replica (default: outpost.db); only 'enroll' or --create\n"
    "                    makes a new one\n"
    "  --create          make the replica when PATH does not exist\n"
    "  --timeout SECONDS for enroll and sync (default: 60)\n"
    "  --version         print the version of outpost and of liboutpost\n"
    "\n"
    "key options (the replica is encrypted; its key never goes on the command line):\n"
    "  --key-file FILE      the 256-bit key: 32 raw bytes or 64 hex characters (mode 0600)\n"
    "  --key-fd N           the same, read from open file descriptor N\n"
    "  --passphrase-fd N    a passphrase, read from descriptor N up to a newline or EOF\n"
    "  (none)               prompt for a passphrase on the terminal, without echo; needs\n"
    "                       stdin to be a terminal (a new replica asks twice)\n"
    "  A new passphrase (new replica, passwd) must be at least 8 bytes.\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 local error, 3 offline (retry later),\n"
    "            4 refused for good (certificate, revoked, bad code, wiped, another\n"
    "              central store),\n"
    "            5 synced, but refused changes wait in quarantine ('outpost rejected')\n"
    "Run 'outpost COMMAND --help' for a command's own help.\n";

/* Prints "outpost: MESSAGE ARG" and where to find the usage. */
static int usage_error(const char *message, const char *arg)
{
    fprintf(stderr, "outpost: %s%s\nRun 'outpost --help' for usage.\n", message, arg);
    return EXIT_USAGE;
}

/* Maps a library result to the CLI's exit code. */
static int exit_for(int code)
{
    switch (code) {
    case OUTPOST_OK: return EXIT_OK;
    case OUTPOST_EOFFLINE:
    case OUTPOST_ETIMEOUT:
    case OUTPOST_ESERVER: return EXIT_OFFLINE;
    case OUTPOST_ECERT:
    case OUTPOST_EAUTH:
    case OUTPOST_EREVOKED:
    case OUTPOST_EENROLL:
    case OUTPOST_ESCHEMA:
    case OUTPOST_ESEQ:
    case OUTPOST_EOTHERSTORE:
    case OUTPOST_EWIPED: return EXIT_REFUSED;
    default: return EXIT_LOCAL;
    }
}

static int report(outpost_replica *r, int code, const char *what)
{
    fprintf(stderr, "outpost: %s: %s (%s)\n", what, r ? outpost_errmsg(r) : "",
            outpost_strerror(code));
    return exit_for(code);
}

/* Says once why a sync stopped: the engine's message, with the code's text only when that
 * message does not already say it (an unreachable server is not "did not answer in time").
 * A revoked or wiped device also hears what became of the entries it had not delivered. */
static void report_sync_failure(const char *what, const char *msg, int code, uint64_t pending)
{
    const char *text = outpost_strerror(code);

    if (code == OUTPOST_EREVOKED)
        fprintf(stderr, "outpost: %s: the office revoked this device: the server takes nothing "
                        "more from it\n", what);
    else if (code == OUTPOST_EWIPED)
        fprintf(stderr, "outpost: %s: the office ordered this device wiped; its replica is "
                        "gone\n", what);
    else if (!msg[0] || strstr(msg, text))
        fprintf(stderr, "outpost: %s: %s\n", what, msg[0] ? msg : text);
    else if (code == OUTPOST_EOFFLINE && strstr(msg, "server unreachable"))
        fprintf(stderr, "outpost: %s: %s\n", what, msg);
    else
        fprintf(stderr, "outpost: %s: %s (%s)\n", what, msg, text);
    if (code == OUTPOST_EREVOKED && pending > 0)
        fprintf(stderr, "outpost: %llu entr%s written here %s not delivered; %s only in this "
                        "replica, and a wipe ordered by the office destroys %s\n",
                (unsigned long long)pending, pending == 1 ? "y" : "ies",
                pending == 1 ? "was" : "were", pending == 1 ? "it is" : "they are",
                pending == 1 ? "it" : "them");
    else if (code == OUTPOST_EWIPED && pending > 0)
        fprintf(stderr, "outpost: %llu entr%s written here and not yet delivered %s destroyed "
                        "with it\n", (unsigned long long)pending, pending == 1 ? "y" : "ies",
                pending == 1 ? "was" : "were");
}

/* Overwrites secret bytes in a way the compiler may not drop as a dead store. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

/* Reads up to cap bytes from fd until EOF; returns the count, or -1 with errno set. */
static ssize_t read_all(int fd, void *buf, size_t cap)
{
    size_t len = 0;

    while (len < cap) {
        ssize_t n = read(fd, (char *)buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    return (ssize_t)len;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A key is exactly 32 raw bytes, or 64 hex characters with optional trailing whitespace. */
static bool parse_key(const uint8_t *buf, size_t len, uint8_t out[OUTPOST_KEY_BYTES])
{
    if (len == OUTPOST_KEY_BYTES) {
        memcpy(out, buf, OUTPOST_KEY_BYTES);
        return true;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    if (len != 2 * OUTPOST_KEY_BYTES)
        return false;
    for (size_t i = 0; i < OUTPOST_KEY_BYTES; i++) {
        int hi = hex_digit(buf[2 * i]), lo = hex_digit(buf[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Reads a key from fd into s; what names the source in messages. */
static int key_from_fd(int fd, const char *what, cli_secret *s)
{
    uint8_t buf[2 * OUTPOST_KEY_BYTES + 8]; /* hex, a line end and room to see a longer file */
    ssize_t n = read_all(fd, buf, sizeof buf);
    int ex = EXIT_OK;

    if (n < 0) {
        fprintf(stderr, "outpost: cannot read the key from %s: %s\n", what, strerror(errno));
        ex = EXIT_LOCAL;
    } else if ((size_t)n == sizeof buf || !parse_key(buf, (size_t)n, s->key)) {
        fprintf(stderr, "outpost: the key in %s must be 32 raw bytes or 64 hex characters\n", what);
        ex = EXIT_LOCAL;
    } else {
        s->is_key = true;
    }
    wipe(buf, sizeof buf);
    return ex;
}

/* A passphrase from fd: everything up to the first newline or EOF. */
static int passphrase_from_fd(int fd, cli_secret *s)
{
    size_t len = 0;

    while (len < PASSPHRASE_MAX + 1) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "outpost: cannot read the passphrase from descriptor %d: %s\n", fd,
                    strerror(errno));
            return EXIT_LOCAL;
        }
        if (n == 0 || c == '\n')
            break;
        s->passphrase[len++] = c;
    }
    if (len > 0 && s->passphrase[len - 1] == '\r')
        len--;
    if (len == 0 || len > PASSPHRASE_MAX) {
        fprintf(stderr, "outpost: the passphrase must be 1 to %d bytes\n", PASSPHRASE_MAX);
        return EXIT_LOCAL;
    }
    s->passphrase_len = len;
    return EXIT_OK;
}

/* The terminal whose echo is off while a passphrase is typed, for the signal handler. */
static volatile sig_atomic_t prompt_tty = -1;
static struct termios prompt_saved;

/* Ctrl-C (or a kill) at the prompt: give the terminal its echo back, then die of the signal. */
static void on_prompt_signal(int sig)
{
    if (prompt_tty >= 0)
        tcsetattr(prompt_tty, TCSAFLUSH, &prompt_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Prompts on the terminal with echo off and reads one line into s. */
static int passphrase_prompt(int tty, const char *prompt, cli_secret *s)
{
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
    void (*previous[sizeof signals / sizeof *signals])(int);
    struct termios quiet;
    int ex;

    if (tcgetattr(tty, &prompt_saved) != 0) {
        fprintf(stderr, "outpost: cannot set up the terminal: %s\n", strerror(errno));
        return EXIT_LOCAL;
    }
    quiet = prompt_saved;
    quiet.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK | ECHONL);
    quiet.c_lflag |= ICANON;
    prompt_tty = tty;
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
        previous[i] = signal(signals[i], on_prompt_signal);
    if (write(tty, prompt, strlen(prompt)) < 0 || tcsetattr(tty, TCSAFLUSH, &quiet) != 0) {
        fprintf(stderr, "outpost: cannot set up the terminal: %s\n", strerror(errno));
        ex = EXIT_LOCAL;
    } else {
        ex = passphrase_from_fd(tty, s);
    }
    tcsetattr(tty, TCSAFLUSH, &prompt_saved);
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
        signal(signals[i], previous[i]);
    prompt_tty = -1;
    if (write(tty, "\n", 1) < 0)
        ex = EXIT_LOCAL;
    return ex;
}

/* Asks for the passphrase on /dev/tty; twice when the replica is about to be created. */
static int passphrase_from_terminal(const options *o, cli_secret *s)
{
    bool creating = access(o->db, F_OK) != 0;
    cli_secret again;
    char prompt[512];
    int tty, ex;

    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "outpost: no key for %s: give --key-file, --key-fd or --passphrase-fd "
                        "(a passphrase prompt needs a terminal)\n", o->db);
        return EXIT_USAGE;
    }
    tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0) {
        fprintf(stderr, "outpost: cannot open /dev/tty for the passphrase: %s\n", strerror(errno));
        return EXIT_LOCAL;
    }
    snprintf(prompt, sizeof prompt, "%sassphrase for %s: ", creating ? "New p" : "P", o->db);
    ex = passphrase_prompt(tty, prompt, s);
    if (ex == EXIT_OK && creating) {
        memset(&again, 0, sizeof again);
        ex = passphrase_prompt(tty, "Repeat the passphrase: ", &again);
        if (ex == EXIT_OK && (again.passphrase_len != s->passphrase_len ||
                              memcmp(again.passphrase, s->passphrase, s->passphrase_len) != 0)) {
            fprintf(stderr, "outpost: the passphrases do not match\n");
            ex = EXIT_USAGE;
        }
        wipe(&again, sizeof again);
    }
    close(tty);
    return ex;
}

/* Gets the replica's secret from the one source the options name. */
static int secret_read(const options *o, cli_secret *s)
{
    memset(s, 0, sizeof *s);
    if (o->key_fd >= 0) {
        char what[32];

        snprintf(what, sizeof what, "descriptor %d", o->key_fd);
        return key_from_fd(o->key_fd, what, s);
    }
    if (o->key_file) {
        int fd = open(o->key_file, O_RDONLY | O_CLOEXEC);
        int ex;

        if (fd < 0) {
            fprintf(stderr, "outpost: cannot open the key file %s: %s\n", o->key_file,
                    strerror(errno));
            return EXIT_LOCAL;
        }
        /* As ssh does with private keys: a key others can read protects nothing. */
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
            fprintf(stderr, "outpost: the key file %s can be read or changed by others (mode "
                            "%04o); make it the owner's alone: chmod 600 %s\n",
                    o->key_file, (unsigned)(sb.st_mode & 07777), o->key_file);
            close(fd);
            return EXIT_LOCAL;
        }
        ex = key_from_fd(fd, o->key_file, s);
        close(fd);
        return ex;
    }
    if (o->passphrase_fd >= 0)
        return passphrase_from_fd(o->passphrase_fd, s);
    return passphrase_from_terminal(o, s);
}

static int open_replica(const options *o, outpost_replica **out)
{
    char err[256];
    cli_secret secret;
    bool creating = access(o->db, F_OK) != 0;
    if (creating && !o->create) {
        fprintf(stderr, "outpost: no replica at %s: check --db, or make one with 'outpost "
                        "enroll' (or --create)\n", o->db);
        return EXIT_LOCAL;
    }
    int ex = secret_read(o, &secret);
    if (ex == EXIT_OK && creating && !secret.is_key && secret.passphrase_len < PASSPHRASE_MIN) {
        fprintf(stderr, "outpost: a new replica's passphrase must be at least %d bytes\n",
                PASSPHRASE_MIN);
        ex = EXIT_USAGE;
    }
    if (ex != EXIT_OK) {
        wipe(&secret, sizeof secret);
        return ex;
    }
    outpost_config cfg = {.path = o->db};
    if (secret.is_key) {
        cfg.secret.key = secret.key;
    } else {
        cfg.secret.passphrase = secret.passphrase;
        cfg.secret.passphrase_len = secret.passphrase_len;
    }
    int rc = outpost_replica_open(&cfg, out, err, sizeof err);
    wipe(&secret, sizeof secret);
    if (rc != OUTPOST_OK) {
        /* the message often opens with the code's own words: say them once */
        if (strstr(err, outpost_strerror(rc)))
            fprintf(stderr, "outpost: %s\n", err);
        else
            fprintf(stderr, "outpost: %s (%s)\n", err, outpost_strerror(rc));
        return exit_for(rc);
    }
    return EXIT_OK;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* ---- enroll ----------------------------------------------------------------------------- */

static int cmd_enroll(const options *o, int argc, char **argv)
{
    static const char help[] =
        "usage: outpost enroll URL CODE (--pin HEX | --ca FILE) [--name LABEL]\n"
        "       outpost enroll 'outpost://HOST:PORT/enroll?code=CODE&pin=HEX' [--name LABEL]\n"
        "URL is the server's sync address, wss://HOST:PORT/sync.\n"
        "Trades a one-time code from the office for this device's credentials. The server is\n"
        "verified by the pin (the SHA-256 fingerprint of its certificate, from the QR code) or\n"
        "by the office's CA certificate; there is no way to skip the check.\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    outpost_enroll_options eo = {0};
    char uri_buf[1024];
    const char *positional[2] = {0};
    int n_pos = 0;
    char *ca = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--pin") == 0 && i + 1 < argc)
            eo.pin = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            ca = read_file(argv[++i]);
            if (!ca) {
                free(ca);
                fprintf(stderr, "outpost: cannot read the CA file %s: %s\n", argv[i],
                        strerror(errno));
                return EXIT_LOCAL;
            }
            eo.ca_pem = ca;
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            eo.device_name = argv[++i];
        else if (argv[i][0] == '-') {
            free(ca);
            return usage_error("enroll: unknown option or missing value: ", argv[i]);
        } else if (n_pos < 2)
            positional[n_pos++] = argv[i];
        else {
            free(ca);
            return usage_error("enroll: unexpected argument: ", argv[i]);
        }
    }
    if (n_pos == 1) {
        const char *name = eo.device_name, *pin = eo.pin, *ca_pem = eo.ca_pem;
        if (outpost_enroll_parse_uri(positional[0], uri_buf, sizeof uri_buf, &eo) != OUTPOST_OK) {
            free(ca);
            return usage_error("enroll: not an enrollment code URI: ", positional[0]);
        }
        eo.device_name = name;
        if (pin)
            eo.pin = pin;
        if (ca_pem) {
            eo.ca_pem = ca_pem;
            eo.pin = NULL;
        }
    } else if (n_pos == 2) {
        eo.url = positional[0];
        eo.code = positional[1];
    } else {
        free(ca);
        return usage_error("enroll: needs a URL and a code, or a QR code URI", "");
    }
    eo.timeout_ms = o->timeout_s * 1000u;

    outpost_replica *r = NULL;
    bool made_here = access(o->db, F_OK) != 0;
    int ex = open_replica(o, &r);
    if (ex == EXIT_OK) {
        int rc = outpost_enroll(r, &eo);
        if (rc != OUTPOST_OK) {
            ex = report(r, rc, "enroll");
        } else {
            char id[40];
            outpost_device_id(r, id);
            printf("enrolled as device %s\n", id);
        }
    }
    outpost_replica_close(r);
    /* A replica made for this enroll holds nothing when it fails: not left behind. */
    if (ex != EXIT_OK && r != NULL && made_here) {
        static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s%s", o->db, suffixes[i]);
            unlink(path);
        }
    }
    free(ca);
    return ex;
}

/* ---- exec and query --------------------------------------------------------------------- */

static int cmd_exec(const options *o, int argc, char **argv)
{
    if (wants_help(argc, argv) || argc == 0) {
        fputs("usage: outpost exec SQL...\n"
              "Runs the statements in one transaction through the library: the change is\n"
              "captured in the outbox and syncs. Prints the outbox entry's sequence.\n",
              argc ? stdout : stderr);
        return argc ? EXIT_OK : EXIT_USAGE;
    }
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    int rc = outpost_tx_begin(r);
    for (int i = 0; rc == OUTPOST_OK && i < argc; i++)
        rc = outpost_exec(r, argv[i], NULL, 0);
    uint64_t seq = 0;
    if (rc == OUTPOST_OK)
        rc = outpost_tx_commit(r, &seq);
    if (rc != OUTPOST_OK) {
        ex = report(r, rc, "exec"); /* before the rollback, which clears the message */
        /* A failed commit has closed the transaction already; either way nothing is kept. */
        (void)outpost_tx_rollback(r);
        fprintf(stderr, "outpost: exec: nothing was committed\n");
    } else if (seq) {
        printf("committed as outbox entry %llu\n", (unsigned long long)seq);
    } else {
        printf("done: no synced table changed, nothing to sync\n");
    }
    outpost_replica_close(r);
    return ex;
}

/* The length of the well-formed UTF-8 character at p (n bytes left), 0 when it is not one
 * (a stray continuation byte, a cut or overlong sequence, a surrogate, past U+10FFFF). */
static size_t utf8_char_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || len > n || p[0] > 0xf4)
        return 0;
    uint32_t cp = p[0] & (0x7fu >> len);
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3fu);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    return overlong || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? 0 : len;
}

/* n bytes of text, escaped so that the output is unambiguous: one line per row, one tab
 * between columns, every byte there (an embedded NUL included). Backslash, NUL, tab, newline
 * and carriage return become \\ \0 \t \n \r; every other byte of a control character (C0,
 * DEL, and C1 such as U+009B, a terminal's CSI) and every byte that is not part of well-formed
 * UTF-8 becomes \xHH, so that a terminal is never sent an escape sequence from a record. */
static void print_text(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (p[i]) {
        case '\\': fputs("\\\\", stdout); continue;
        case '\0': fputs("\\0", stdout); continue;
        case '\t': fputs("\\t", stdout); continue;
        case '\n': fputs("\\n", stdout); continue;
        case '\r': fputs("\\r", stdout); continue;
        default: break;
        }
        if (p[i] < 0x80) {
            if (p[i] < 0x20 || p[i] == 0x7f)
                printf("\\x%02x", p[i]);
            else
                putchar(p[i]);
            continue;
        }
        size_t len = utf8_char_len(p + i, n - i);
        bool c1 = len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0; /* U+0080..U+009F */
        if (len == 0 || c1) {
            for (size_t k = 0; k < (len ? len : 1); k++)
                printf("\\x%02x", p[i + k]);
            i += len ? len - 1 : 0;
            continue;
        }
        fwrite(p + i, 1, len, stdout);
        i += len - 1;
    }
}

/* SQL NULL is \N and a blob \<N-byte blob>: no text prints so (its backslash is doubled). */
static void print_value(sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: fputs("\\N", stdout); break;
    case SQLITE_BLOB: printf("\\<%d-byte blob>", sqlite3_column_bytes(st, col)); break;
    default: {
        const unsigned char *text = sqlite3_column_text(st, col);
        print_text(text, (size_t)sqlite3_column_bytes(st, col));
        break;
    }
    }
}

static int cmd_query(const options *o, int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 1) {
        fputs("usage: outpost query SQL\n"
              "Prints the rows of one statement, a header line then one line per row, columns\n"
              "separated by tabs. Reads only. Every value is printed whole and unambiguous:\n"
              "in text, backslash, NUL, tab, newline and carriage return are written \\\\ \\0\n"
              "\\t \\n \\r; other control characters (C0, DEL, C1) and bytes that are not\n"
              "UTF-8 \\xHH per byte; SQL NULL is \\N and a blob \\<N-byte blob>.\n",
              argc == 1 ? stdout : stderr);
        return argc == 1 ? EXIT_OK : EXIT_USAGE;
    }
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    sqlite3 *db = outpost_replica_db(r);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, argv[0], -1, &st, NULL);
    /* A write to a synced table is already refused at prepare time (SQLITE_AUTH). */
    if (rc == SQLITE_AUTH || (rc == SQLITE_OK && !sqlite3_stmt_readonly(st))) {
        fprintf(stderr, "outpost: query only reads; use 'outpost exec' to write\n");
        ex = EXIT_USAGE;
    } else if (rc == SQLITE_OK) {
        int n = sqlite3_column_count(st);
        for (int c = 0; c < n; c++) {
            const char *name = sqlite3_column_name(st, c);
            if (c)
                putchar('\t');
            print_text((const unsigned char *)name, strlen(name));
        }
        putchar('\n');
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int c = 0; c < n; c++) {
                if (c)
                    putchar('\t');
                print_value(st, c);
            }
            putchar('\n');
        }
    }
    if (ex == EXIT_OK && rc != SQLITE_DONE) {
        fprintf(stderr, "outpost: query: %s\n", sqlite3_errmsg(db));
        ex = EXIT_LOCAL;
    }
    sqlite3_finalize(st);
    outpost_replica_close(r);
    return ex;
}

/* ---- sync and watch --------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void draw_progress(void *user_data, const outpost_sync_status *st)
{
    (void)user_data;
    if (!isatty(STDERR_FILENO))
        return;
    char bar[31];
    uint64_t total = st->push_total ? st->push_total : 1;
    size_t filled = (size_t)(st->activity == OUTPOST_ACTIVITY_PUSHING
                                 ? 30 * st->push_done / total
                                 : (st->activity >= OUTPOST_ACTIVITY_PULLING ? 30 : 0));
    memset(bar, '#', filled);
    memset(bar + filled, '.', 30 - filled);
    bar[30] = '\0';
    fprintf(stderr, "\r%-10s [%s] pushed %llu/%llu  pulled %llu rows  %llu KiB ",
            outpost_activity_name(st->activity), bar, (unsigned long long)st->push_done,
            (unsigned long long)st->push_total, (unsigned long long)st->rows_pulled,
            (unsigned long long)((st->bytes_sent + st->bytes_received) / 1024));
}

static void print_watch_line(void *user_data, const outpost_sync_status *st)
{
    static outpost_activity last = OUTPOST_ACTIVITY_STOPPED;
    (void)user_data;
    if (st->activity == last && st->activity != OUTPOST_ACTIVITY_IDLE)
        return;
    last = st->activity;
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    printf("%s %-10s pending=%llu pushed=%llu pulled=%llu", when,
           outpost_activity_name(st->activity), (unsigned long long)st->pending,
           (unsigned long long)st->push_done, (unsigned long long)st->rows_pulled);
    if (st->rejected)
        printf(" refused=%llu (see 'outpost rejected')", (unsigned long long)st->rejected);
    if (st->last_error)
        printf(" error=\"%s\"", st->last_error_msg);
    if (st->activity == OUTPOST_ACTIVITY_OFFLINE)
        printf(" retry_in=%ums", st->retry_in_ms);
    putchar('\n');
    fflush(stdout);
}

static int run_sync(const options *o, bool watch)
{
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    outpost_sync_config cfg = {
        .on_status = watch ? print_watch_line : draw_progress,
        .stay_connected = watch,
    };
    outpost_sync *s = NULL;
    outpost_status before;
    if (outpost_status_get(r, &before) != OUTPOST_OK)
        memset(&before, 0, sizeof before);
    int rc = outpost_sync_start(r, &cfg, &s);
    if (rc != OUTPOST_OK) {
        ex = report(r, rc, watch ? "watch" : "sync");
        outpost_replica_close(r);
        return ex;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    outpost_sync_status st;
    if (watch) {
        while (!interrupted) {
            outpost_sync_get_status(s, &st);
            if (st.activity == OUTPOST_ACTIVITY_STOPPED)
                break;
            usleep(100 * 1000);
        }
        outpost_sync_get_status(s, &st);
        rc = st.activity == OUTPOST_ACTIVITY_STOPPED ? st.last_error : OUTPOST_OK;
    } else {
        /* One sync: wait for a completed cycle, or give up at the timeout. */
        rc = OUTPOST_ETIMEOUT;
        for (uint32_t waited = 0; waited < o->timeout_s * 10u && !interrupted; waited++) {
            rc = outpost_sync_wait(s, 0, 100);
            if (rc != OUTPOST_ETIMEOUT)
                break;
            outpost_sync_get_status(s, &st);
            /* Offline with nothing to show for it: say so rather than wait the full time. */
            if (st.activity == OUTPOST_ACTIVITY_OFFLINE && waited >= 50) {
                rc = st.last_error ? st.last_error : OUTPOST_EOFFLINE;
                break;
            }
        }
        outpost_sync_get_status(s, &st);
        /* Given up at the timeout while failing: the failure says more than "in time". */
        if (rc == OUTPOST_ETIMEOUT && st.last_error != OUTPOST_OK)
            rc = st.last_error;
        if (isatty(STDERR_FILENO))
            fputc('\n', stderr);
    }
    outpost_sync_stop(s);
    outpost_status local;
    if (rc == OUTPOST_OK && !watch && outpost_status_get(r, &local) == OUTPOST_OK &&
        local.rejected > 0) {
        /* Never "synced" while the server has refused something the worker wrote. */
        printf("pushed %llu entries (%llu rows), pulled %llu rows\n",
               (unsigned long long)st.push_done, (unsigned long long)st.rows_pushed,
               (unsigned long long)st.rows_pulled);
        if (local.rejected > before.rejected)
            fprintf(stderr, "outpost: sync: %llu change%s refused by the server in this sync; "
                            "%llu in all %s waiting in quarantine, with the values typed: see "
                            "'outpost rejected'\n",
                    (unsigned long long)(local.rejected - before.rejected),
                    local.rejected - before.rejected == 1 ? "" : "s",
                    (unsigned long long)local.rejected, local.rejected == 1 ? "is" : "are");
        else
            fprintf(stderr, "outpost: sync: nothing new was refused, but %llu change%s the "
                            "server refused earlier %s still waiting in quarantine, with the "
                            "values typed: see 'outpost rejected'\n",
                    (unsigned long long)local.rejected, local.rejected == 1 ? "" : "s",
                    local.rejected == 1 ? "is" : "are");
        ex = EXIT_QUARANTINE;
    } else if (rc == OUTPOST_OK && !watch)
        printf("synced: pushed %llu entries (%llu rows), pulled %llu rows\n",
               (unsigned long long)st.push_done, (unsigned long long)st.rows_pushed,
               (unsigned long long)st.rows_pulled);
    else if (rc != OUTPOST_OK) {
        report_sync_failure(watch ? "watch" : "sync", st.last_error_msg, rc, before.pending);
        ex = exit_for(rc);
    }
    outpost_replica_close(r);
    return ex;
}

static int cmd_sync(const options *o, int argc, char **argv, bool watch)
{
    if (wants_help(argc, argv)) {
        fputs(watch ? "usage: outpost watch\nStays connected and syncs automatically: after "
                      "its own writes, on the server's\nnotices, and with backoff while the "
                      "server is away. Writes made by another\nprocess (another 'outpost exec', "
                      "the app) are found when it next wakes,\nwithin 5 minutes when idle. "
                      "One line per change of state. Stops "
                      "on Ctrl-C.\n"
                    : "usage: outpost sync\nPushes the outbox and pulls until up to date, "
                      "once. Shows progress on a\nterminal. Exits 3 when the server cannot be "
                      "reached, 5 when changes the\nserver refused wait in quarantine "
                      "('outpost rejected').\n",
              stdout);
        return EXIT_OK;
    }
    if (argc && argv[0][0] == '-')
        return usage_error("unexpected argument (options such as --timeout go before the "
                           "command: outpost --timeout 10 sync): ",
                           argv[0]);
    if (argc)
        return usage_error("unexpected argument: ", argv[0]);
    return run_sync(o, watch);
}

/* ---- status and conflicts --------------------------------------------------------------- */

static void print_time(const char *label, int64_t ms)
{
    if (!ms) {
        printf("%s never\n", label);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
    printf("%s %s\n", label, when);
}

static int cmd_status(const options *o, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs("usage: outpost status\nShows the device id, pending outbox entries, the pull "
              "cursor, the last sync\nand the schema version.\n",
              stdout);
        return EXIT_OK;
    }
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    outpost_status st;
    char id[40];
    int rc = outpost_status_get(r, &st);
    if (rc != OUTPOST_OK) {
        ex = report(r, rc, "status");
    } else {
        printf("device:          %s\n",
               outpost_device_id(r, id) == OUTPOST_OK ? id : "(not enrolled)");
        printf("pending entries: %llu\n", (unsigned long long)st.pending);
        print_time("oldest pending: ", st.oldest_pending_ms);
        print_time("last sync:      ", st.last_sync_ms);
        printf("cursor:          %llu\n", (unsigned long long)st.cursor);
        printf("schema version:  %u\n", st.schema_version);
        printf("conflicts:       %llu\n", (unsigned long long)st.conflicts);
        printf("refused changes: %llu%s\n", (unsigned long long)st.rejected,
               st.rejected ? " (in quarantine: see 'outpost rejected')" : "");
    }
    outpost_replica_close(r);
    return ex;
}

static int cmd_conflicts(const options *o, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs("usage: outpost conflicts\nLists the decisions the server took against this "
              "device's writes, and\nrejected writes: when, table, key, column, kind, this "
              "device's value,\nthe value kept, and why.\n",
              stdout);
        return EXIT_OK;
    }
    char *query_argv[] = {
        "SELECT datetime(at_ms / 1000, 'unixepoch') AS at, tbl, pk, col_name, kind, mine, "
        "winner, reason FROM _outpost_conflicts ORDER BY id"};
    return cmd_query(o, 1, query_argv);
}

/* ---- passwd ----------------------------------------------------------------------------- */

static int cmd_passwd(const options *o, int argc, char **argv)
{
    static const char help[] =
        "usage: outpost [key option] passwd (--new-key-file FILE | --new-passphrase-fd N)\n"
        "Re-encrypts the replica under a new key or passphrase (at least 8 bytes); the old one\n"
        "comes from the usual key options. Nothing may have the replica open. Crash-safe: after\n"
        "an interruption the replica opens with the old secret or the new one.\n"
        "Without a --new option, asks for the new passphrase twice on the terminal.\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    options new_o = {.db = o->db, .key_fd = -1, .passphrase_fd = -1, .create = true};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--new-key-file") == 0 && i + 1 < argc)
            new_o.key_file = argv[++i];
        else if (strcmp(argv[i], "--new-passphrase-fd") == 0 && i + 1 < argc) {
            char *end;
            long fd = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || fd < 0 || fd > 65535)
                return usage_error("a descriptor number is needed, not: ", argv[i]);
            new_o.passphrase_fd = (int)fd;
        } else
            return usage_error("passwd: unknown option or missing value: ", argv[i]);
    }
    if (access(o->db, F_OK) != 0) {
        fprintf(stderr, "outpost: no replica at %s\n", o->db);
        return EXIT_LOCAL;
    }
    cli_secret old_s, new_s;
    int ex = secret_read(o, &old_s);
    if (ex == EXIT_OK) {
        /* "creating" for the prompt: the new passphrase is asked twice */
        char probe[520];
        snprintf(probe, sizeof probe, "%s.new-passphrase", o->db);
        new_o.db = probe;
        ex = secret_read(&new_o, &new_s);
        new_o.db = o->db;
    } else {
        memset(&new_s, 0, sizeof new_s);
    }
    if (ex == EXIT_OK && !new_s.is_key && new_s.passphrase_len < PASSPHRASE_MIN) {
        fprintf(stderr, "outpost: passwd: the new passphrase must be at least %d bytes\n",
                PASSPHRASE_MIN);
        ex = EXIT_USAGE;
    }
    if (ex == EXIT_OK) {
        outpost_secret olds = {0}, news = {0};
        char err[256];
        if (old_s.is_key)
            olds.key = old_s.key;
        else
            olds.passphrase = old_s.passphrase, olds.passphrase_len = old_s.passphrase_len;
        if (new_s.is_key)
            news.key = new_s.key;
        else
            news.passphrase = new_s.passphrase, news.passphrase_len = new_s.passphrase_len;
        int rc = outpost_replica_rekey(o->db, &olds, &news, err, sizeof err);
        if (rc != OUTPOST_OK) {
            fprintf(stderr, "outpost: passwd: %s (%s)\n", err, outpost_strerror(rc));
            ex = exit_for(rc);
        } else {
            printf("the replica %s now opens with the new %s\n", o->db,
                   new_s.is_key ? "key" : "passphrase");
        }
    }
    wipe(&old_s, sizeof old_s);
    wipe(&new_s, sizeof new_s);
    return ex;
}

/* ---- rejected --------------------------------------------------------------------------- */

static void print_outpost_value(const outpost_value *v)
{
    switch (v->type) {
    case OUTPOST_VALUE_INT: printf("%lld", (long long)v->u.i); break;
    case OUTPOST_VALUE_REAL: printf("%.17g", v->u.r); break;
    case OUTPOST_VALUE_TEXT:
        putchar('\'');
        print_text(v->u.b.p, v->u.b.n); /* escaped as query does: whole, NUL included */
        putchar('\'');
        break;
    case OUTPOST_VALUE_BLOB: printf("<%u-byte blob>", (unsigned)v->u.b.n); break;
    default: fputs("NULL", stdout); break;
    }
}

/* A string of the replica's or the server's (a row's key as JSON, a refusal's message): it can
 * carry what a worker or a device typed, so it is escaped as query escapes text. */
static void print_string(const char *s)
{
    print_text((const unsigned char *)s, strlen(s));
}

static void print_rejected_line(const outpost_rejected *q)
{
    time_t t = (time_t)(q->at_ms / 1000);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("%lld\t%s\t%s\t%s\t", (long long)q->id, when, q->table, q->op);
    print_string(q->pk);
    printf("\t%u %s\t", (unsigned)q->code, q->code_name);
    print_string(q->message);
    putchar('\n');
}

/* Parses an id argument; 0 when it is not one. */
static int64_t parse_id(const char *arg)
{
    char *end;
    long long v = strtoll(arg, &end, 10);
    return (*end || end == arg || v <= 0) ? 0 : (int64_t)v;
}

static int rejected_list(outpost_replica *r)
{
    size_t n = 0;
    int rc = outpost_rejected_list(r, NULL, 0, &n);
    int64_t *ids = rc == OUTPOST_OK && n ? calloc(n, sizeof *ids) : NULL;
    if (rc == OUTPOST_OK && n && !ids)
        rc = OUTPOST_ENOMEM;
    if (rc == OUTPOST_OK && n)
        rc = outpost_rejected_list(r, ids, n, &n);
    if (rc != OUTPOST_OK) {
        free(ids);
        return report(r, rc, "rejected");
    }
    printf("id\tat\ttable\top\tkey\tcode\tmessage\n");
    for (size_t i = 0; i < n && rc == OUTPOST_OK; i++) {
        outpost_rejected *q = NULL;
        rc = outpost_rejected_read(r, ids[i], &q);
        if (rc == OUTPOST_OK)
            print_rejected_line(q);
        outpost_rejected_free(q);
    }
    free(ids);
    if (rc != OUTPOST_OK)
        return report(r, rc, "rejected");
    if (n == 0)
        printf("(nothing refused)\n");
    return EXIT_OK;
}

static int rejected_show(outpost_replica *r, int64_t id)
{
    outpost_rejected *q = NULL;
    int rc = outpost_rejected_read(r, id, &q);
    if (rc != OUTPOST_OK)
        return report(r, rc, "rejected show");
    printf("id:      %lld\nentry:   %llu\n", (long long)q->id, (unsigned long long)q->seq);
    print_time("refused:", q->at_ms);
    printf("table:   %s\nop:      %s\nkey:     ", q->table, q->op);
    print_string(q->pk);
    printf("\ncode:    %u %s\nmessage: ", (unsigned)q->code, q->code_name);
    print_string(q->message);
    fputs("\nvalues:\n", stdout);
    for (uint32_t i = 0; i < q->n_values; i++) {
        printf("  %s = ", q->columns[i]);
        print_outpost_value(&q->values[i]);
        puts(q->changed[i] ? "   (written by this change)" : "");
    }
    outpost_rejected_free(q);
    return EXIT_OK;
}

/* COL=VALUE arguments as text values (the column's type affinity applies when written). */
static int rejected_resubmit(outpost_replica *r, int64_t id, int argc, char **argv)
{
    const char **cols = calloc((size_t)argc + 1, sizeof *cols);
    outpost_value *vals = calloc((size_t)argc + 1, sizeof *vals);
    int ex = EXIT_OK;
    if (!cols || !vals) {
        free(cols);
        free(vals);
        return report(r, OUTPOST_ENOMEM, "rejected resubmit");
    }
    for (int i = 0; i < argc && ex == EXIT_OK; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            ex = usage_error("rejected resubmit: corrections are COL=VALUE, not: ", argv[i]);
            break;
        }
        *eq = '\0';
        cols[i] = argv[i];
        vals[i].type = OUTPOST_VALUE_TEXT;
        vals[i].u.b.p = (const uint8_t *)(eq + 1);
        vals[i].u.b.n = (uint32_t)strlen(eq + 1);
    }
    if (ex == EXIT_OK) {
        uint64_t seq = 0;
        int rc = outpost_rejected_resubmit(r, id, cols, vals, (uint32_t)argc, &seq);
        if (rc != OUTPOST_OK)
            ex = report(r, rc, "rejected resubmit");
        else if (seq)
            printf("resubmitted %lld as outbox entry %llu\n", (long long)id,
                   (unsigned long long)seq);
        else
            printf("resubmitted %lld (the row already held those values)\n", (long long)id);
    }
    free(cols);
    free(vals);
    return ex;
}

static int cmd_rejected(const options *o, int argc, char **argv)
{
    static const char help[] =
        "usage: outpost rejected                      list changes the server refused\n"
        "       outpost rejected show ID              one of them, with every value typed\n"
        "       outpost rejected resubmit ID [COL=VALUE...]\n"
        "                                             write it again, corrected (a new outbox\n"
        "                                             entry; values are text, the column's type\n"
        "                                             affinity applies)\n"
        "       outpost rejected discard ID           drop it for good (recorded: when, what,\n"
        "                                             never the values)\n"
        "A refused change stays in quarantine, inside the encrypted replica, until resubmitted\n"
        "or discarded; 'outpost sync' exits 5 while any is there.\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    const char *verb = argc ? argv[0] : "list";
    int64_t id = argc >= 2 ? parse_id(argv[1]) : 0;
    bool is_list = strcmp(verb, "list") == 0;
    bool is_resubmit = strcmp(verb, "resubmit") == 0;
    if (!is_list && strcmp(verb, "show") != 0 && !is_resubmit && strcmp(verb, "discard") != 0)
        return usage_error("rejected: unknown action: ", verb);
    if (is_list ? argc > 1 : (id == 0 || (!is_resubmit && argc != 2)))
        return usage_error("rejected: needs one quarantine id (from 'outpost rejected') after ",
                           verb);
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    if (is_list)
        ex = rejected_list(r);
    else if (strcmp(verb, "show") == 0)
        ex = rejected_show(r, id);
    else if (is_resubmit)
        ex = rejected_resubmit(r, id, argc - 2, argv + 2);
    else {
        int rc = outpost_rejected_discard(r, id);
        if (rc != OUTPOST_OK)
            ex = report(r, rc, "rejected discard");
        else
            printf("discarded %lld (recorded in _outpost_rejected_log)\n", (long long)id);
    }
    outpost_replica_close(r);
    return ex;
}

/* ---- field ------------------------------------------------------------------------------ */

static int cmd_field(const options *o, int argc, char **argv)
{
    static const char help[] =
        "usage: outpost [key option] field [--port N] [--worker ID] [--forms DIR]\n"
        "Serves the field app on http://127.0.0.1 (this device only) and prints its address,\n"
        "which carries a token made for this run: open it in a browser here. Records are made\n"
        "and changed from the forms, shown with their sync state (pending, synced, refused, in\n"
        "conflict); refused ones can be corrected and resubmitted. When the replica is\n"
        "enrolled, sync runs in the background. Needs no network. Stops on Ctrl-C.\n"
        "  --port N       listen on port N (default: a free port)\n"
        "  --worker ID    the worker id the forms write in their 'worker' columns\n"
        "  --forms DIR    use the forms in DIR/*.json instead of the server's\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    field_options fo = {0};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || end == argv[i] || v > 65535)
                return usage_error("field: --port takes 0 to 65535, not: ", argv[i]);
            fo.port = (uint16_t)v;
        } else if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc) {
            fo.worker = argv[++i];
        } else if (strcmp(argv[i], "--forms") == 0 && i + 1 < argc) {
            fo.forms_dir = argv[++i];
        } else {
            return usage_error("field: unknown option or missing value: ", argv[i]);
        }
    }
    outpost_replica *r = NULL;
    int ex = open_replica(o, &r);
    if (ex != EXIT_OK)
        return ex;
    ex = field_run(r, &fo);
    outpost_replica_close(r);
    return ex;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    options o = {.db = "outpost.db", .timeout_s = 60, .key_fd = -1, .passphrase_fd = -1};
    int key_sources = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("outpost %s (liboutpost %s, build %s)\n", OUTPOST_VERSION_STRING, outpost_version(),
                   OUTPOST_BUILD_ID);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            o.db = argv[++i];
        } else if (strcmp(argv[i], "--create") == 0) {
            o.create = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v == 0 || v > 86400)
                return usage_error("--timeout takes 1 to 86400 seconds, not: ", argv[i]);
            o.timeout_s = (uint32_t)v;
        } else if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc) {
            o.key_file = argv[++i];
            key_sources++;
        } else if ((strcmp(argv[i], "--key-fd") == 0 || strcmp(argv[i], "--passphrase-fd") == 0) &&
                   i + 1 < argc) {
            bool is_key = strcmp(argv[i], "--key-fd") == 0;
            char *end;
            long fd = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || fd < 0 || fd > 65535)
                return usage_error("a descriptor number is needed, not: ", argv[i]);
            if (is_key)
                o.key_fd = (int)fd;
            else
                o.passphrase_fd = (int)fd;
            key_sources++;
        } else if (strcmp(argv[i], "--key") == 0 || strcmp(argv[i], "--passphrase") == 0) {
            return usage_error("a key is never taken on the command line (ps shows it to every "
                               "user): use --key-file, --key-fd or --passphrase-fd instead of ",
                               argv[i]);
        } else {
            return usage_error("unknown option or missing value: ", argv[i]);
        }
    }
    if (key_sources > 1)
        return usage_error("give at most one of --key-file, --key-fd and --passphrase-fd", "");
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    int n = argc - i;
    char **rest = argv + i;
    if (strcmp(cmd, "enroll") == 0) {
        o.create = true;
        return cmd_enroll(&o, n, rest);
    }
    if (strcmp(cmd, "passwd") == 0)
        return cmd_passwd(&o, n, rest);
    if (strcmp(cmd, "exec") == 0)
        return cmd_exec(&o, n, rest);
    if (strcmp(cmd, "query") == 0)
        return cmd_query(&o, n, rest);
    if (strcmp(cmd, "sync") == 0)
        return cmd_sync(&o, n, rest, false);
    if (strcmp(cmd, "watch") == 0)
        return cmd_sync(&o, n, rest, true);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&o, n, rest);
    if (strcmp(cmd, "conflicts") == 0)
        return cmd_conflicts(&o, n, rest);
    if (strcmp(cmd, "rejected") == 0)
        return cmd_rejected(&o, n, rest);
    if (strcmp(cmd, "field") == 0)
        return cmd_field(&o, n, rest);
    return usage_error("unknown command: ", cmd);
}
