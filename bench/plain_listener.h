// The listening socket of the bench's plain echo servers (baseline, thread
// per connection, process per connection): the same --host/--port/--backlog
// flags and the same first line as twist's examples/echo_server, so that the
// runners treat every server alike. Plain sockets only, nothing from twist.

#ifndef TWIST_BENCH_PLAIN_LISTENER_H_
#define TWIST_BENCH_PLAIN_LISTENER_H_

#include <string>

// Prints "PROGRAM: PROBLEM" on stderr; returns 1 for main to return.
int PlainFail(const char* program, const std::string& problem);

// Raises the open-files limit to the hard limit (a server's connections are
// its descriptors), binds --host:--port, listens with --backlog and prints
// "listening on HOST:PORT" on stdout. Returns the listening descriptor
// (close-on-exec, non-blocking if asked), or -1 after printing one line on
// stderr saying why. *bad_usage is set when the flags were the problem.
int PlainListen(const char* program, bool nonblocking, bool* bad_usage);

#endif  // TWIST_BENCH_PLAIN_LISTENER_H_
