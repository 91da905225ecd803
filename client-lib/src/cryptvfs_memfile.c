/* cryptvfs temporary files: temp databases, statement journals, sorter and index-build spill
 * files. Their layouts are not page-shaped (sorter runs are packed records), so instead of
 * encrypting them they never leave memory: a growable buffer per file, wiped when closed. */
#include <string.h>

#include <mbedtls/platform_util.h>

#include "cryptvfs_int.h"

typedef struct memfile {
    sqlite3_file base;
    uint8_t *data;
    sqlite3_int64 size;
    sqlite3_int64 capacity;
} memfile;

size_t cryptvfs_memfile_size(void)
{
    return sizeof(memfile);
}

static memfile *as_memfile(sqlite3_file *file)
{
    return (memfile *)file;
}

static int mem_close(sqlite3_file *file)
{
    memfile *m = as_memfile(file);
    if (m->data) {
        mbedtls_platform_zeroize(m->data, (size_t)m->capacity);
        sqlite3_free(m->data);
    }
    m->data = NULL;
    m->size = m->capacity = 0;
    return SQLITE_OK;
}

static int mem_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset)
{
    memfile *m = as_memfile(file);
    sqlite3_int64 available = offset < m->size ? m->size - offset : 0;
    if (available >= amount) {
        memcpy(buf, m->data + offset, (size_t)amount);
        return SQLITE_OK;
    }
    if (available > 0)
        memcpy(buf, m->data + offset, (size_t)available);
    memset((uint8_t *)buf + available, 0, (size_t)(amount - available));
    return SQLITE_IOERR_SHORT_READ;
}

static int mem_reserve(memfile *m, sqlite3_int64 needed)
{
    if (needed <= m->capacity)
        return SQLITE_OK;
    if (needed > CRYPTVFS_MEMFILE_LIMIT)
        return SQLITE_FULL;
    sqlite3_int64 capacity = m->capacity ? m->capacity : 65536;
    while (capacity < needed)
        capacity *= 2;
    if (capacity > CRYPTVFS_MEMFILE_LIMIT)
        capacity = CRYPTVFS_MEMFILE_LIMIT;
    /* Not realloc: the old block would go back to the allocator with its contents intact. */
    uint8_t *data = sqlite3_malloc64((sqlite3_uint64)capacity);
    if (!data)
        return SQLITE_IOERR_NOMEM;
    if (m->data) {
        memcpy(data, m->data, (size_t)m->size);
        mbedtls_platform_zeroize(m->data, (size_t)m->capacity);
        sqlite3_free(m->data);
    }
    m->data = data;
    m->capacity = capacity;
    return SQLITE_OK;
}

static int mem_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset)
{
    memfile *m = as_memfile(file);
    sqlite3_int64 end = offset + amount;
    int rc = mem_reserve(m, end);
    if (rc != SQLITE_OK)
        return rc;
    if (offset > m->size)
        memset(m->data + m->size, 0, (size_t)(offset - m->size));
    memcpy(m->data + offset, buf, (size_t)amount);
    if (end > m->size)
        m->size = end;
    return SQLITE_OK;
}

static int mem_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    memfile *m = as_memfile(file);
    if (size < m->size) {
        mbedtls_platform_zeroize(m->data + size, (size_t)(m->size - size));
        m->size = size;
    }
    return SQLITE_OK;
}

static int mem_sync(sqlite3_file *file, int flags)
{
    (void)file;
    (void)flags;
    return SQLITE_OK;
}

static int mem_file_size(sqlite3_file *file, sqlite3_int64 *out_size)
{
    *out_size = as_memfile(file)->size;
    return SQLITE_OK;
}

static int mem_lock(sqlite3_file *file, int lock)
{
    (void)file;
    (void)lock;
    return SQLITE_OK;
}

static int mem_check_reserved_lock(sqlite3_file *file, int *out_reserved)
{
    (void)file;
    *out_reserved = 0;
    return SQLITE_OK;
}

static int mem_file_control(sqlite3_file *file, int op, void *arg)
{
    (void)file;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND;
}

static int mem_sector_size(sqlite3_file *file)
{
    (void)file;
    return 512;
}

static int mem_device_characteristics(sqlite3_file *file)
{
    (void)file;
    return SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods memfile_methods = {
    1,
    mem_close,
    mem_read,
    mem_write,
    mem_truncate,
    mem_sync,
    mem_file_size,
    mem_lock,
    mem_lock,
    mem_check_reserved_lock,
    mem_file_control,
    mem_sector_size,
    mem_device_characteristics,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

int cryptvfs_memfile_open(sqlite3_file *file)
{
    memfile *m = as_memfile(file);
    memset(m, 0, sizeof *m);
    file->pMethods = &memfile_methods;
    return SQLITE_OK;
}
