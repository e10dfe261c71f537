#ifndef TWIST_FRAMEWORK_UNIX_SOCKET_FILE_H_
#define TWIST_FRAMEWORK_UNIX_SOCKET_FILE_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace twist {

/// The filesystem side of a listening Unix socket bound to a path (an
/// abstract name has none): Reactor::listenUNIX claims the path before
/// bind(), and the port removes what it created when it stops listening.
///
/// - A stale socket file (its server died without removing it) is replaced:
///   a socket file whose connect() is refused has nobody listening. One
///   where a connect() is accepted (or waits: a full backlog) belongs to a
///   live server and is never touched; nor is a path that is not a socket.
/// - With a lock file (Twisted's wantPID), PATH.lock is held with flock()
///   for the port's whole life and holds the owner's pid. The kernel drops
///   the lock when its process dies, so a lock is never stale, and checking
///   and replacing the socket file happen under it: two servers that both
///   use the lock never replace each other's socket, however they race.
///   Without it, two servers starting at the same moment could both find
///   the same stale file and the later bind() would replace the earlier's.
/// - On removal, the socket file is unlinked only if it is still the one
///   bound here (same device and inode): a later server's file is left.
class UnixSocketFile {
 public:
  /// Makes `path` free for bind(), as above; with `lock_file`, first takes
  /// PATH.lock. Fails with the errno status of EADDRINUSE when a live
  /// server holds the path or its lock ("locked by process 1234 (PATH.lock)"),
  /// or when the path is something other than a socket.
  static absl::StatusOr<std::unique_ptr<UnixSocketFile>> Claim(const std::string& path,
                                                              bool lock_file);
  /// remove().
  ~UnixSocketFile();
  UnixSocketFile(const UnixSocketFile&) = delete;
  UnixSocketFile& operator=(const UnixSocketFile&) = delete;

  /// After bind(): the file now at the path is ours.
  absl::Status bound();
  /// Removes the socket file if it is still ours, then releases and removes
  /// the lock file. Idempotent.
  void remove();

  const std::string& path() const { return path_; }
  /// PATH.lock, or "" without a lock file.
  std::string lockPath() const;

 private:
  explicit UnixSocketFile(std::string path) : path_(std::move(path)) {}
  absl::Status lock();
  absl::Status removeIfStale();

  std::string path_;
  int lock_fd_ = -1;
  bool bound_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_UNIX_SOCKET_FILE_H_
