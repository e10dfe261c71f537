// What the bench's plain echo servers (baseline, thread per connection,
// process per connection) share: the listening socket, with the same
// --host/--port/--backlog flags and the same first line as twist's
// examples/echo_server so that the runners treat every server alike, and the
// blocking accept and echo of the seeds' models. Plain sockets only, nothing
// from twist.

#ifndef TWIST_BENCH_PLAIN_SERVER_H_
#define TWIST_BENCH_PLAIN_SERVER_H_

#include <signal.h>
#include <stddef.h>

#include <string>

// Prints "PROGRAM: PROBLEM" on stderr; returns 1 for main to return.
int PlainFail(const char* program, const std::string& problem);

// Raises the open-files limit to the hard limit (a server's connections are
// its descriptors), binds --host:--port, listens with --backlog and prints
// "listening on HOST:PORT" on stdout. Returns the listening descriptor
// (close-on-exec, non-blocking if asked), or -1 after printing one line on
// stderr saying why. *bad_usage is set when the flags were the problem.
int PlainListen(const char* program, bool nonblocking, bool* bad_usage);

// Waits until a connection can be accepted and accepts it as a blocking
// socket. The wait is a ppoll with `waiting` as the signal mask: the caller
// keeps its stop (and child) signals blocked everywhere else, so that one
// arriving just before the wait still ends it. Returns the descriptor; -1
// when woken by a signal or when the client had gone (EINTR, EAGAIN,
// ECONNABORTED; an out-of-descriptors error is said once on stderr and the
// client waits in the backlog); -2 when ppoll itself failed (said).
int PlainAccept(const char* program, int lfd, const sigset_t& waiting);

// Echoes fd with blocking read()/send() through buf until the peer closes,
// the connection fails or it is shut down. Does not close fd.
void PlainEcho(int fd, char* buf, size_t size);

#endif  // TWIST_BENCH_PLAIN_SERVER_H_
