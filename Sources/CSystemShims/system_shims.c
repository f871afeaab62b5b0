#define _GNU_SOURCE
#include <unistd.h>
#include "system_shims.h"

int tidemark_syncfs(int fd) { return syncfs(fd); }
