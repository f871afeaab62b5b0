/* The floor of an unbatched produce: the least a Kafka broker can do for one message per
 * request, to set Tidemark's and Redis's server CPU per message beside. For each request it
 * reads the frame from the socket, checks it is Produce v3 for one partition, checks the
 * RecordBatch (magic, length, CRC-32C over attributes..end, as every broker must), gives it
 * the next offset, pwrites it to the end of one log file, and writes the ProduceResponse.
 * Nothing else: no indexes, no idempotence, no metrics, no memory budget, one log for every
 * topic and partition. THREADS event loops (epoll, level-triggered, one listening socket each
 * with SO_REUSEPORT, so the kernel spreads connections over them), as Redis has one and
 * Tidemark two; the log's next offset and byte position are one atomic word pair under a lock
 * held for the assignment only.
 *
 *   cc -O2 -pthread -I ../../Sources/CCRC32C/include -o produce_floor produce_floor.c \
 *      ../../Sources/CCRC32C/crc32c.c
 *   ./produce_floor PORT LOGFILE [THREADS]
 *
 * Request it parses (Produce v3, after the int32 size):
 *   api_key int16 = 0 | api_version int16 = 3 | correlation_id int32 | client_id string16 |
 *   transactional_id nullable string16 | acks int16 | timeout_ms int32 |
 *   topics int32 = 1 | name string16 | partitions int32 = 1 | index int32 | records bytes32
 * RecordBatch v2 (in records): base_offset int64 | length int32 | leader_epoch int32 |
 *   magic int8 = 2 | crc uint32 (CRC-32C of the rest) | attributes int16 | last_offset_delta int32 | ...
 * Response (Produce v3, after the int32 size):
 *   correlation_id int32 | topics int32 = 1 | name string16 | partitions int32 = 1 |
 *   index int32 | error_code int16 | base_offset int64 | log_append_time int64 = -1 |
 *   throttle_time_ms int32 = 0
 * Any other request, or a bad batch, closes the connection (qbench sends only this).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crc32c.h"

enum { BUFFER_BYTES = 64 * 1024, MAX_EVENTS = 64 };

struct connection {
    int fd;
    size_t used;
    uint8_t in[BUFFER_BYTES];
};

static int port, log_fd;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t next_offset;
static off_t next_position;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint8_t *put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; return p + 2; }
static uint8_t *put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; return p + 4; }
static uint8_t *put64(uint8_t *p, uint64_t v) { return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v); }

/* A bounds-checked cursor over one request. */
struct cursor { const uint8_t *p, *end; int ok; };
static const uint8_t *take(struct cursor *c, size_t n) {
    if (!c->ok || (size_t)(c->end - c->p) < n) { c->ok = 0; return NULL; }
    const uint8_t *at = c->p;
    c->p += n;
    return at;
}
static int32_t take32(struct cursor *c) { const uint8_t *p = take(c, 4); return p ? (int32_t)be32(p) : 0; }
static int16_t take16(struct cursor *c) { const uint8_t *p = take(c, 2); return p ? (int16_t)be16(p) : 0; }

/* Handles one frame (after its size). Writes the response into out; returns its size
 * (with its own size prefix), or -1 to close the connection. */
static ssize_t handle(uint8_t *frame, size_t size, uint8_t *out) {
    struct cursor c = { frame, frame + size, 1 };
    int16_t api = take16(&c), version = take16(&c);
    int32_t correlation = take32(&c);
    int16_t client = take16(&c);
    if (client > 0) take(&c, (size_t)client);
    int16_t transactional = take16(&c);
    if (transactional > 0) take(&c, (size_t)transactional);
    take16(&c); /* acks */
    take32(&c); /* timeout */
    if (take32(&c) != 1) return -1;
    int16_t name_length = take16(&c);
    if (name_length < 0) return -1;
    const uint8_t *name = take(&c, (size_t)name_length);
    if (take32(&c) != 1) return -1;
    int32_t index = take32(&c);
    int32_t records_size = take32(&c);
    if (!c.ok || api != 0 || version != 3 || records_size < 61) return -1;
    uint8_t *batch = (uint8_t *)take(&c, (size_t)records_size);
    if (!batch) return -1;
    /* One batch filling the records: its length covers everything after the first 12 bytes. */
    if ((int64_t)be32(batch + 8) + 12 != records_size || batch[16] != 2) return -1;
    if (tidemark_crc32c_extend(0, batch + 21, (size_t)records_size - 21) != be32(batch + 17)) return -1;
    int64_t count = (int64_t)be32(batch + 23) + 1;

    pthread_mutex_lock(&log_lock);
    int64_t base = next_offset;
    off_t position = next_position;
    next_offset += count;
    next_position += records_size;
    pthread_mutex_unlock(&log_lock);
    put64(batch, (uint64_t)base);
    if (pwrite(log_fd, batch, (size_t)records_size, position) != records_size) return -1;

    uint8_t *p = out + 4;
    p = put32(p, (uint32_t)correlation);
    p = put32(p, 1);
    p = put16(p, (uint16_t)name_length);
    memcpy(p, name, (size_t)name_length);
    p += name_length;
    p = put32(p, 1);
    p = put32(p, (uint32_t)index);
    p = put16(p, 0);
    p = put64(p, (uint64_t)base);
    p = put64(p, UINT64_MAX);
    p = put32(p, 0);
    put32(out, (uint32_t)(p - out - 4));
    return p - out;
}

/* Reads once (as an event loop does per readable event) and answers every whole frame. */
static int serve(struct connection *conn) {
    ssize_t n = read(conn->fd, conn->in + conn->used, BUFFER_BYTES - conn->used);
    if (n <= 0) return n < 0 && errno == EAGAIN ? 0 : -1;
    conn->used += (size_t)n;
    uint8_t out[4096];
    size_t out_used = 0, start = 0;
    while (conn->used - start >= 4) {
        uint32_t size = be32(conn->in + start);
        if (size > BUFFER_BYTES - 4 || size > 0x7fffffff) return -1;
        if (conn->used - start - 4 < size) break;
        if (out_used + 512 > sizeof out) return -1;
        ssize_t written = handle(conn->in + start + 4, size, out + out_used);
        if (written < 0) return -1;
        out_used += (size_t)written;
        start += 4 + size;
    }
    memmove(conn->in, conn->in + start, conn->used - start);
    conn->used -= start;
    /* Responses are small and clients wait for each: the socket buffer always has room. */
    if (out_used > 0 && write(conn->fd, out, out_used) != (ssize_t)out_used) return -1;
    return 0;
}

static void *loop(void *unused) {
    (void)unused;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 512)) {
        perror("listen");
        exit(1);
    }
    int epoll = epoll_create1(0);
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(epoll, events, MAX_EVENTS, -1);
        for (int i = 0; i < ready; i++) {
            struct connection *conn = events[i].data.ptr;
            if (!conn) {
                int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0) continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conn = calloc(1, sizeof *conn);
                conn->fd = fd;
                struct epoll_event added = { .events = EPOLLIN, .data.ptr = conn };
                epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &added);
            } else if (serve(conn) < 0) {
                close(conn->fd); /* also leaves the epoll set */
                free(conn);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT LOGFILE [THREADS]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    log_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd < 0 || threads < 1 || threads > 64) {
        perror(argv[2]);
        return 1;
    }
    pthread_t ids[64];
    for (int i = 1; i < threads; i++) pthread_create(&ids[i], NULL, loop, NULL);
    loop(NULL);
    return 0;
}
