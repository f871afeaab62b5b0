/* The disk's floor for durable appends: N times, write SIZE bytes after the previous ones and
 * fdatasync, into (a) a file that grows with every write, as a log without space ahead does,
 * and (b) a file whose blocks were written with zeros and synced first, as Tidemark keeps the
 * active segment of a log that syncs every append. Prints the mean time and CPU per sync.
 *
 *   cc -O2 -o fsync_floor fsync_floor.c && ./fsync_floor DIR [N] [SIZE]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void run(const char *dir, const char *mode, int n, int size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-floor-%s.dat", dir, mode);
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); exit(1); }
    char *buffer = malloc(size > (1 << 20) ? size : (1 << 20));
    if (strcmp(mode, "zeros-ahead") == 0) {
        memset(buffer, 0, 1 << 20);
        for (long at = 0; at < (long)n * size + (1 << 20); at += 1 << 20)
            if (pwrite(fd, buffer, 1 << 20, at) != 1 << 20) { perror("pwrite"); exit(1); }
        if (fsync(fd) != 0) { perror("fsync"); exit(1); }
    }
    memset(buffer, 'x', size);
    double started = seconds(), cpu = cpu_seconds();
    for (int i = 0; i < n; i++) {
        if (pwrite(fd, buffer, size, (off_t)i * size) != size) { perror("pwrite"); exit(1); }
        if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
    }
    double took = seconds() - started;
    printf("floor %s syncs %d bytes %d us_per_sync %.1f syncs_per_s %.0f cpu_us_per_sync %.1f\n", mode, n, size,
           took / n * 1e6, n / took, (cpu_seconds() - cpu) / n * 1e6);
    close(fd);
    unlink(path);
    free(buffer);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s DIR [N] [SIZE]\n", argv[0]); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 3000, size = argc > 3 ? atoi(argv[3]) : 3000;
    run(argv[1], "growing", n, size);
    run(argv[1], "zeros-ahead", n, size);
    return 0;
}
