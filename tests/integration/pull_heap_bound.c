/* A 100,000-row pull applied page by page keeps the library's peak heap bounded by the page
 * size, not by the total pulled.
 *
 * The library allocates only through SQLite (sqlite3_malloc), so sqlite3_memory_highwater()
 * sees all of its heap and SQLite's own (page cache included). The test's pages are built with
 * plain malloc and are not counted: they stand for the decoded ROWS message the sync engine
 * hands over. The peak is measured over the first tenth of the pull and over all of it: bounded
 * means the two are about equal. A pull in pages ten times bigger shows what the bound tracks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outpost.h"
#include "outpost_engine.h"

#define TOTAL_ROWS 100000u
#define N_COLS 10u

static const char *cols[N_COLS] = {"id", "team_id", "name", "age", "gender", "place",
                                   "met_at", "risk", "notes", "worker"};
static uint32_t pk[] = {0};

/* The replica is encrypted, as on a device: the bound holds with the VFS's cipher state too. */
static const uint8_t replica_key[OUTPOST_KEY_BYTES] = {
    0x70, 0x75, 0x6c, 0x6c, 0x2d, 0x68, 0x65, 0x61, 0x70, 0x2d, 0x62, 0x6f, 0x75, 0x6e, 0x64, 0x2d,
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

#define CHECK(cond, ...)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "pull_heap_bound: %s:%d: ", __FILE__, __LINE__);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct page_buf {
    proto_value *vals;
    char *text; /* backing for the text values */
    size_t text_stride;
} page_buf;

static proto_value text_at(char *slot, const char *s)
{
    size_t n = strlen(s);
    proto_value v;

    memcpy(slot, s, n);
    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)slot;
    v.u.b.n = (uint32_t)n;
    return v;
}

/* Fills rows first..first+n-1 of the pull. */
static void page_fill(page_buf *pb, uint32_t first, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t row = first + i;
        proto_value *v = &pb->vals[(size_t)i * N_COLS];
        char *t = &pb->text[(size_t)i * pb->text_stride];
        char buf[96];

        snprintf(buf, sizeof buf, "0190a000-0000-7000-8000-%012u", row);
        v[0] = text_at(t, buf);
        v[1] = text_at(t + 40, "team-north");
        snprintf(buf, sizeof buf, "Contact %u", row);
        v[2] = text_at(t + 60, buf);
        memset(&v[3], 0, sizeof v[3]);
        v[3].type = PROTO_INT;
        v[3].u.i = 10 + row % 8;
        v[4] = text_at(t + 80, row % 2 ? "f" : "m");
        v[5] = text_at(t + 90, "central station, east exit");
        memset(&v[6], 0, sizeof v[6]);
        v[6].type = PROTO_INT;
        v[6].u.i = 1700000000000 + row;
        memset(&v[7], 0, sizeof v[7]);
        v[7].type = PROTO_INT;
        v[7].u.i = row % 4;
        v[8] = text_at(t + 120, "met at night; referred to shelter; follow up next week");
        v[9] = text_at(t + 180, "worker-7");
    }
}

/* Pulls TOTAL_ROWS in pages of page_rows into a fresh replica at path; returns the peak heap
 * over the first tenth of the pull and over all of it. */
static void pull_all(const char *path, uint32_t page_rows, int64_t *out_peak_tenth, int64_t *out_peak)
{
    outpost_config cfg = {.path = path, .secret.key = replica_key};
    outpost_replica *r = NULL;
    char err[256] = "";
    proto_schema_table t = {.name = "contacts", .scope_col = "team_id", .n_columns = N_COLS,
                            .columns = cols, .n_pk = 1, .pk = pk,
                            .create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT"
                                          " NOT NULL, name TEXT, age INTEGER, gender TEXT, place TEXT,"
                                          " met_at INTEGER, risk INTEGER, notes TEXT, worker TEXT)"};
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &t};
    page_buf pb = {.text_stride = 192};
    proto_table_rows tr = {.table = "contacts", .n_columns = N_COLS, .n_pk = 1};
    proto_rows page = {.n_tables = 1, .tables = &tr};

    outpost_files_wipe(path, NULL, 0);
    CHECK(outpost_replica_open(&cfg, &r, err, sizeof err) == OUTPOST_OK, "open: %s", err);
    CHECK(outpost_schema_install(r, &schema) == OUTPOST_OK, "schema: %s", outpost_errmsg(r));
    pb.vals = calloc((size_t)page_rows * N_COLS, sizeof *pb.vals);
    pb.text = calloc(page_rows, pb.text_stride);
    CHECK(pb.vals && pb.text, "out of memory");

    sqlite3_memory_highwater(1);
    *out_peak_tenth = 0;
    for (uint32_t first = 0; first < TOTAL_ROWS; first += page_rows) {
        page_fill(&pb, first, page_rows);
        tr.rows = pb.vals;
        tr.n_rows = page_rows;
        page.cursor = first / page_rows + 1;
        page.more = first + page_rows < TOTAL_ROWS;
        CHECK(outpost_rows_apply(r, &page) == OUTPOST_OK, "apply: %s", outpost_errmsg(r));
        if (first + page_rows == TOTAL_ROWS / 10)
            *out_peak_tenth = sqlite3_memory_highwater(0);
    }
    *out_peak = sqlite3_memory_highwater(0);

    sqlite3_stmt *stmt = NULL;
    CHECK(sqlite3_prepare_v2(outpost_replica_db(r), "SELECT count(*) FROM contacts", -1, &stmt,
                             NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW, "count");
    CHECK(sqlite3_column_int64(stmt, 0) == TOTAL_ROWS, "pulled %lld rows",
          (long long)sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    outpost_status st;
    CHECK(outpost_status_get(r, &st) == OUTPOST_OK && st.pending == 0, "pulled rows were captured");
    outpost_replica_close(r);
    outpost_files_wipe(path, NULL, 0);
    free(pb.vals);
    free(pb.text);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    int64_t tenth_1k, peak_1k, tenth_10k, peak_10k;

    if (tmp == NULL || *tmp == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/outpost-heap-XXXXXX", tmp);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/replica.db", dir);

    pull_all(path, 1000, &tenth_1k, &peak_1k);
    pull_all(path, 10000, &tenth_10k, &peak_10k);
    rmdir(dir);

    printf("rows=%u\n", TOTAL_ROWS);
    printf("page_rows=1000 peak_heap_first_10pct_bytes=%lld peak_heap_bytes=%lld\n",
           (long long)tenth_1k, (long long)peak_1k);
    printf("page_rows=10000 peak_heap_first_10pct_bytes=%lld peak_heap_bytes=%lld\n",
           (long long)tenth_10k, (long long)peak_10k);
    /* Bounded by the page, not the total: pulling ten times more rows in pages of the same
     * size must not grow the peak by more than SQLite's page cache filling up (2 MiB by
     * default) ... */
    CHECK(peak_1k <= tenth_1k + 3 * 1024 * 1024,
          "peak grew from %lld to %lld bytes over the pull", (long long)tenth_1k, (long long)peak_1k);
    /* ... and stays far below the size of what was pulled (about 20 MiB of row data). */
    CHECK(peak_1k < 8 * 1024 * 1024, "peak %lld bytes is not bounded", (long long)peak_1k);
    return 0;
}
