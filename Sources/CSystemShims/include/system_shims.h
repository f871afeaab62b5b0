#ifndef TIDEMARK_SYSTEM_SHIMS_H
#define TIDEMARK_SYSTEM_SHIMS_H

/// syncfs(2): flushes every file and the metadata of the filesystem holding `fd`; 0 or -1 with
/// errno set. Glibc declares it only under _GNU_SOURCE, which Swift's Glibc module does not see.
int tidemark_syncfs(int fd);

/// preadv2(2) with RWF_NOWAIT: reads only what the page cache holds now; -1 with errno EAGAIN
/// when the first byte is not cached (EOPNOTSUPP where the filesystem cannot tell).
long tidemark_pread_nowait(int fd, void *buffer, unsigned long count, long offset);

/// Names the calling thread (prctl PR_SET_NAME: what `ps -L`, `top -H`, perf and debuggers
/// show; the kernel keeps the first 15 bytes). 0 or -1 with errno set.
int tidemark_name_this_thread(const char *name);

#endif
