#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* One line, appended and flushed to disk: the file is evidence, a torn line would be lost. */
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
    errno = e;
    return ok ? 0 : -1;
}

void checkpoint_emit(store *st, const char *file, uint64_t now_ms, const char *why)
{
    char line[STORE_CHECKPOINT_LINE_MAX];
    uint64_t n_rows = 0;

    if (store_audit_checkpoint(st, now_ms, line, &n_rows) != STORE_OK) {
        log_msg(LOG_ERROR, "audit checkpoint (%s): %s", why, store_errmsg(st));
        return;
    }
    log_msg(LOG_INFO, "audit checkpoint (%s): %s", why, line);
    if (file != NULL && append_line(file, line) != 0)
        log_msg(LOG_ERROR, "audit checkpoint (%s): cannot append to %s: %s", why, file,
                strerror(errno));
}
