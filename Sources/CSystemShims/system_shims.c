#define _GNU_SOURCE
#include <sys/prctl.h>
#include <unistd.h>
#include <sys/uio.h>
#include "system_shims.h"

int tidemark_syncfs(int fd) { return syncfs(fd); }

long tidemark_pread_nowait(int fd, void *buffer, unsigned long count, long offset) {
    struct iovec vector = { .iov_base = buffer, .iov_len = count };
    return preadv2(fd, &vector, 1, offset, RWF_NOWAIT);
}

int tidemark_name_this_thread(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }
