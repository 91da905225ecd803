/*
 * The power-loss VFS (powerloss_vfs.h): pending writes per file path, flushed at xSync, dropped
 * or torn at a simulated power cut.
 */
#include "powerloss_vfs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

enum { OP_WRITE, OP_TRUNCATE };

/* One unsynced write or truncate. */
typedef struct pl_op {
    int kind;
    sqlite3_int64 off; /* write offset, or the truncated size */
    int len;
    unsigned char *data;
    struct pl_op *next;
} pl_op;

/* A file by path: its unsynced operations survive close and reopen, as a page cache would. */
typedef struct pl_node {
    char *path;
    pl_op *head, *tail;
    struct pl_node *next;
} pl_node;

typedef struct pl_file {
    sqlite3_file base;
    pl_node *node;      /* NULL: a nameless or delete-on-close file, passed through */
    sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
} pl_file;

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *root;
    bool installed;
    pl_node *nodes;
    uint64_t arm_at; /* 0: disarmed */
    bool dead;
    powerloss_stats stats;
} G;

static pl_node *node_find(const char *path, bool create)
{
    for (pl_node *n = G.nodes; n; n = n->next)
        if (strcmp(n->path, path) == 0)
            return n;
    if (!create)
        return NULL;
    pl_node *n = calloc(1, sizeof *n);
    if (n == NULL || (n->path = strdup(path)) == NULL) {
        free(n);
        return NULL;
    }
    n->next = G.nodes;
    G.nodes = n;
    return n;
}

static void node_forget(pl_node *n)
{
    pl_op *op = n->head;
    while (op) {
        pl_op *next = op->next;
        free(op->data);
        free(op);
        op = next;
    }
    n->head = n->tail = NULL;
}

static int node_append(pl_node *n, int kind, sqlite3_int64 off, const void *data, int len)
{
    pl_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return SQLITE_NOMEM;
    op->kind = kind;
    op->off = off;
    op->len = len;
    if (len > 0) {
        op->data = malloc((size_t)len);
        if (op->data == NULL) {
            free(op);
            return SQLITE_NOMEM;
        }
        memcpy(op->data, data, (size_t)len);
    }
    if (n->tail)
        n->tail->next = op;
    else
        n->head = op;
    n->tail = op;
    return SQLITE_OK;
}

/* ---- file methods -------------------------------------------------------------------------- */

static int pl_close(sqlite3_file *f)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
}

/* The file's size as the program sees it: the real size with the pending operations on top. */
static int logical_size(pl_file *p, sqlite3_int64 *out_size)
{
    sqlite3_int64 size = 0;
    int rc = p->real->pMethods->xFileSize(p->real, &size);
    if (rc != SQLITE_OK)
        return rc;
    for (pl_op *op = p->node ? p->node->head : NULL; op; op = op->next) {
        if (op->kind == OP_TRUNCATE)
            size = op->off;
        else if (op->off + op->len > size)
            size = op->off + op->len;
    }
    *out_size = size;
    return SQLITE_OK;
}

static int pl_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    pl_file *p = (pl_file *)f;
    if (p->node == NULL)
        return p->real->pMethods->xRead(p->real, buf, amt, off);
    sqlite3_int64 size = 0;
    int rc = logical_size(p, &size);
    if (rc != SQLITE_OK)
        return rc;
    rc = p->real->pMethods->xRead(p->real, buf, amt, off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
        return rc;
    unsigned char *b = buf;
    for (pl_op *op = p->node->head; op; op = op->next) {
        if (op->kind == OP_TRUNCATE) {
            if (op->off < off + amt) {
                sqlite3_int64 from = op->off > off ? op->off - off : 0;
                memset(b + from, 0, (size_t)(amt - from));
            }
            continue;
        }
        sqlite3_int64 lo = op->off > off ? op->off : off;
        sqlite3_int64 hi = op->off + op->len < off + amt ? op->off + op->len : off + amt;
        if (lo < hi)
            memcpy(b + (lo - off), op->data + (lo - op->off), (size_t)(hi - lo));
    }
    if (off + amt > size) {
        sqlite3_int64 from = size > off ? size - off : 0;
        memset(b + from, 0, (size_t)(amt - from));
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int pl_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    pl_file *p = (pl_file *)f;
    if (G.dead)
        return SQLITE_IOERR_WRITE;
    if (p->node == NULL)
        return p->real->pMethods->xWrite(p->real, buf, amt, off);
    int rc = node_append(p->node, OP_WRITE, off, buf, amt);
    if (rc != SQLITE_OK)
        return rc;
    G.stats.writes++;
    if (G.arm_at != 0 && G.stats.writes >= G.arm_at)
        G.dead = true; /* this write is in the page cache; the power goes now */
    return SQLITE_OK;
}

static int pl_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    pl_file *p = (pl_file *)f;
    if (G.dead)
        return SQLITE_IOERR_TRUNCATE;
    if (p->node == NULL)
        return p->real->pMethods->xTruncate(p->real, size);
    return node_append(p->node, OP_TRUNCATE, size, NULL, 0);
}

/* Flushes the pending operations to the real file: from here they survive a cut. The real
 * fsync is left out: the real file stands for the disk, and the test never loses real power. */
static int pl_sync(sqlite3_file *f, int flags)
{
    pl_file *p = (pl_file *)f;
    (void)flags;
    if (G.dead)
        return SQLITE_IOERR_FSYNC;
    if (p->node == NULL || p->node->head == NULL)
        return SQLITE_OK;
    int rc = SQLITE_OK;
    for (pl_op *op = p->node->head; op && rc == SQLITE_OK; op = op->next)
        rc = op->kind == OP_TRUNCATE ? p->real->pMethods->xTruncate(p->real, op->off)
                                     : p->real->pMethods->xWrite(p->real, op->data, op->len,
                                                                 op->off);
    if (rc != SQLITE_OK)
        return rc;
    node_forget(p->node);
    G.stats.syncs++;
    return SQLITE_OK;
}

static int pl_file_size(sqlite3_file *f, sqlite3_int64 *out_size)
{
    return logical_size((pl_file *)f, out_size);
}

static int pl_lock(sqlite3_file *f, int lock)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xLock(p->real, lock);
}

static int pl_unlock(sqlite3_file *f, int lock)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xUnlock(p->real, lock);
}

static int pl_check_reserved(sqlite3_file *f, int *out)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int pl_file_control(sqlite3_file *f, int op, void *arg)
{
    pl_file *p = (pl_file *)f;
    /* A size hint would grow the real file behind the pending writes; memory mapping would read
     * the real file past them. Neither is needed for correctness. */
    if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_MMAP_SIZE)
        return SQLITE_NOTFOUND;
    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int pl_sector_size(sqlite3_file *f)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}

static int pl_device_characteristics(sqlite3_file *f)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int pl_shm_map(sqlite3_file *f, int page, int page_size, int extend, void volatile **out)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xShmMap(p->real, page, page_size, extend, out);
}

static int pl_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void pl_shm_barrier(sqlite3_file *f)
{
    pl_file *p = (pl_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}

static int pl_shm_unmap(sqlite3_file *f, int delete_flag)
{
    pl_file *p = (pl_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, G.dead ? 0 : delete_flag);
}

/* Version 2: shared memory, but no xFetch, so SQLite never maps the real file. */
static const sqlite3_io_methods pl_methods = {
    2,           pl_close,         pl_read,         pl_write,       pl_truncate,
    pl_sync,     pl_file_size,     pl_lock,         pl_unlock,      pl_check_reserved,
    pl_file_control, pl_sector_size, pl_device_characteristics, pl_shm_map, pl_shm_lock,
    pl_shm_barrier, pl_shm_unmap,  NULL,            NULL,
};

/* ---- VFS methods --------------------------------------------------------------------------- */

static int pl_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    pl_file *p = (pl_file *)f;
    memset(p, 0, sizeof *p);
    p->real = (sqlite3_file *)(p + 1);
    if (G.dead)
        return SQLITE_CANTOPEN;
    if (name != NULL && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0) {
        p->node = node_find(name, true);
        if (p->node == NULL)
            return SQLITE_NOMEM;
    }
    int rc = G.root->xOpen(G.root, name, p->real, flags, out_flags);
    if (rc == SQLITE_OK && p->real->pMethods)
        p->base.pMethods = &pl_methods;
    return rc;
}

static int pl_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    if (G.dead)
        return SQLITE_IOERR_DELETE;
    pl_node *n = node_find(name, false);
    if (n != NULL)
        node_forget(n);
    return G.root->xDelete(G.root, name, sync_dir);
}

static int pl_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return G.root->xAccess(G.root, name, flags, out);
}

static int pl_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return G.root->xFullPathname(G.root, name, n, out);
}

static void *pl_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return G.root->xDlOpen(G.root, name);
}

static void pl_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    G.root->xDlError(G.root, n, out);
}

static void (*pl_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return G.root->xDlSym(G.root, h, sym);
}

static void pl_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    G.root->xDlClose(G.root, h);
}

static int pl_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.root->xRandomness(G.root, n, out);
}

static int pl_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return G.root->xSleep(G.root, us);
}

static int pl_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return G.root->xCurrentTime(G.root, out);
}

static int pl_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.root->xGetLastError ? G.root->xGetLastError(G.root, n, out) : 0;
}

static int pl_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return G.root->xCurrentTimeInt64(G.root, out);
}

int powerloss_install(void)
{
    if (G.installed)
        return 0;
    if (sqlite3_initialize() != SQLITE_OK)
        return -1;
    G.root = sqlite3_vfs_find(NULL);
    if (G.root == NULL || G.root->iVersion < 2)
        return -1;
    G.vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(pl_file) + G.root->szOsFile,
        .mxPathname = G.root->mxPathname,
        .zName = "powerloss",
        .xOpen = pl_open,
        .xDelete = pl_delete,
        .xAccess = pl_access,
        .xFullPathname = pl_full_pathname,
        .xDlOpen = pl_dlopen,
        .xDlError = pl_dlerror,
        .xDlSym = pl_dlsym,
        .xDlClose = pl_dlclose,
        .xRandomness = pl_randomness,
        .xSleep = pl_sleep,
        .xCurrentTime = pl_current_time,
        .xGetLastError = pl_last_error,
        .xCurrentTimeInt64 = pl_current_time_int64,
    };
    if (sqlite3_vfs_register(&G.vfs, 1) != SQLITE_OK)
        return -1;
    G.installed = true;
    return 0;
}

void powerloss_arm(uint64_t nth_write)
{
    memset(&G.stats, 0, sizeof G.stats);
    G.arm_at = nth_write;
}

bool powerloss_is_dead(void)
{
    return G.dead;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void powerloss_cut(uint64_t seed, powerloss_stats *out_stats)
{
    uint64_t rng = seed;
    G.dead = true;
    for (pl_node *n = G.nodes; n; n = n->next) {
        if (n->head == NULL)
            continue;
        G.stats.files_hit++;
        int fd = open(n->path, O_WRONLY);
        for (pl_op *op = n->head; op; op = op->next) {
            if (op->kind == OP_TRUNCATE)
                continue; /* the size change never reached the disk */
            G.stats.pending_writes++;
            if (fd < 0 || op->len < 2 || splitmix(&rng) % 2 == 0) {
                G.stats.dropped_bytes += (uint64_t)op->len;
                continue;
            }
            /* Torn: a correct prefix (often not a whole sector), then garbage to the end. */
            int keep = (int)(splitmix(&rng) % (uint64_t)op->len);
            unsigned char *torn = malloc((size_t)op->len);
            if (torn == NULL) {
                G.stats.dropped_bytes += (uint64_t)op->len;
                continue;
            }
            memcpy(torn, op->data, (size_t)keep);
            for (int i = keep; i < op->len; i++)
                torn[i] = (unsigned char)splitmix(&rng);
            if (pwrite(fd, torn, (size_t)op->len, (off_t)op->off) == (ssize_t)op->len) {
                G.stats.torn_writes++;
                G.stats.dropped_bytes += (uint64_t)(op->len - keep);
            } else {
                G.stats.dropped_bytes += (uint64_t)op->len;
            }
            free(torn);
        }
        if (fd >= 0)
            close(fd);
        node_forget(n);
    }
    if (out_stats)
        *out_stats = G.stats;
}

void powerloss_reset(void)
{
    G.dead = false;
    G.arm_at = 0;
    memset(&G.stats, 0, sizeof G.stats);
}

void powerloss_stats_get(powerloss_stats *out_stats)
{
    *out_stats = G.stats;
}
