#define _GNU_SOURCE
#include "stop_signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

// Written before the handler is installed, then only read (by the handler).
static volatile sig_atomic_t stop_fd = -1;
static atomic_int first_stop = 0;

static void on_stop_signal(int signum) {
    int saved = errno;
    int expected = 0;
    atomic_compare_exchange_strong(&first_stop, &expected, signum);
    if (stop_fd >= 0) {
        unsigned char byte = (unsigned char)signum;
        ssize_t written = write(stop_fd, &byte, 1);
        (void)written;
    }
    errno = saved;
}

int tidemark_stop_signal_install(int signum, int fd) {
    stop_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(signum, &action, NULL);
}

int tidemark_stop_signal_first(void) { return atomic_load(&first_stop); }

int tidemark_signal_is_ignored(int signum) {
    struct sigaction current;
    if (sigaction(signum, NULL, &current) != 0) return 0;
    return current.sa_handler == SIG_IGN;
}

int tidemark_signal_restore_default(int signum) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    return sigaction(signum, &action, NULL);
}

int tidemark_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
