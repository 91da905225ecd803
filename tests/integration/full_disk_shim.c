/*
 * A full disk without root, for outpostd under test: preloaded into the daemon (LD_PRELOAD),
 * it makes every write to a file whose path starts with OUTPOST_FULL_DISK_PREFIX fail with ENOSPC, as a full
 * filesystem would, for as long as the file OUTPOST_FULL_DISK_FLAG exists. Removing the flag
 * file is space coming back. Writes elsewhere (the daemon's log, sockets) are untouched.
 */
#undef _FILE_OFFSET_BITS /* define pwrite and pwrite64 both, as they are */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);

/* Whether a write to fd must fail: the flag file exists and fd is a file under the prefix. */
static bool disk_is_full(int fd)
{
    const char *flag = getenv("OUTPOST_FULL_DISK_FLAG");
    const char *prefix = getenv("OUTPOST_FULL_DISK_PREFIX");
    char link[64], target[PATH_MAX];
    ssize_t n;

    if (!flag || !prefix || access(flag, F_OK) != 0)
        return false;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strncmp(target, prefix, strlen(prefix)) == 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (disk_is_full(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return ((write_fn)dlsym(RTLD_NEXT, "write"))(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset)
{
    if (disk_is_full(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return ((pwrite_fn)dlsym(RTLD_NEXT, "pwrite"))(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset)
{
    if (disk_is_full(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return ((pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64"))(fd, buf, n, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int n_iov)
{
    if (disk_is_full(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return ((writev_fn)dlsym(RTLD_NEXT, "writev"))(fd, iov, n_iov);
}
