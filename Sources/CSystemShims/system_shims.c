#define _GNU_SOURCE
#include <unistd.h>
#include <sys/uio.h>
#include "system_shims.h"

int tidemark_syncfs(int fd) { return syncfs(fd); }

long tidemark_pread_nowait(int fd, void *buffer, unsigned long count, long offset) {
    struct iovec vector = { .iov_base = buffer, .iov_len = count };
    return preadv2(fd, &vector, 1, offset, RWF_NOWAIT);
}
