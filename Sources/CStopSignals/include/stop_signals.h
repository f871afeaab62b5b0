#ifndef TIDEMARK_STOP_SIGNALS_H
#define TIDEMARK_STOP_SIGNALS_H

/// The signal handler of `tidemark serve`, in C so that nothing but async-signal-safe calls
/// run in it: it records the first signal (an atomic compare-exchange) and writes the signal
/// number as one byte to `fd` (a non-blocking pipe; errors ignored, errno preserved).
/// Installs it for `signum` with sigaction (SA_RESTART); 0, or -1 with errno set.
int tidemark_stop_signal_install(int signum, int fd);

/// The first signal the handler saw, 0 if none yet.
int tidemark_stop_signal_first(void);

/// 1 when `signum` is ignored now (SIG_IGN, e.g. inherited from nohup or a shell's `&`).
int tidemark_signal_is_ignored(int signum);

/// Puts `signum` back to its default action; 0, or -1 with errno set.
int tidemark_signal_restore_default(int signum);

/// pipe2(fds, O_CLOEXEC); 0, or -1 with errno set.
int tidemark_pipe_cloexec(int fds[2]);

#endif
