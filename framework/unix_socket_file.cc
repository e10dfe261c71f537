#include "framework/unix_socket_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/address.h"

namespace twist {
namespace {

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// What the lock file says about its owner, for the error message.
std::string Owner(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid(absl::StripAsciiWhitespace(absl::string_view(buf, n > 0 ? n : 0)));
  return pid.empty() ? "another process" : absl::StrCat("process ", pid);
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixSocketFile>> UnixSocketFile::Claim(const std::string& path,
                                                                     bool lock_file) {
  std::unique_ptr<UnixSocketFile> f(new UnixSocketFile(path));
  if (lock_file) {
    if (absl::Status s = f->lock(); !s.ok()) return s;
  }
  if (absl::Status s = f->removeIfStale(); !s.ok()) return s;
  return f;
}

std::string UnixSocketFile::lockPath() const {
  return lock_fd_ >= 0 ? absl::StrCat(path_, ".lock") : "";
}

absl::Status UnixSocketFile::lock() {
  const std::string lock_path = absl::StrCat(path_, ".lock");
  // A lock file its owner removed (unlink, then unlock) while we waited to
  // open it is not the lock any more: try the new one. Bounded: each round
  // means another process got the lock and let it go meanwhile.
  for (int round = 0; round < 100; ++round) {
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", lock_path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (error == EWOULDBLOCK) {
        std::string owner = Owner(fd);
        ::close(fd);
        return absl::ErrnoToStatus(
            EADDRINUSE, absl::StrCat("locked by ", owner, " (", lock_path, ")"));
      }
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat("cannot lock ", lock_path));
    }
    struct stat held, named;
    if (::fstat(fd, &held) == 0 && ::stat(lock_path.c_str(), &named) == 0 &&
        SameFile(held, named)) {
      // Ours. The pid is for people and tools: the lock is the flock.
      std::string pid = absl::StrCat(getpid(), "\n");
      if (::ftruncate(fd, 0) != 0 ||
          ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        const int error = errno;
        ::close(fd);
        return absl::ErrnoToStatus(error, absl::StrCat("cannot write ", lock_path));
      }
      lock_fd_ = fd;
      return absl::OkStatus();
    }
    ::close(fd);
  }
  return absl::UnavailableError(absl::StrCat("cannot lock ", lock_path,
                                             ": it keeps being replaced"));
}

absl::Status UnixSocketFile::removeIfStale() {
  struct stat st;
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path_));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::ErrnoToStatus(EADDRINUSE,
                               absl::StrCat(path_, " exists and is not a socket"));
  }
  // Is anybody listening? Only a refused connect says no. (A live server
  // sees this probe as a connection that closes at once.)
  absl::StatusOr<Address> addr = Address::Unix(path_);
  if (!addr.ok()) return addr.status();
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return absl::ErrnoToStatus(errno, "socket");
  int rc;
  do {
    rc = ::connect(probe, addr->sockaddr_ptr(), addr->length());
  } while (rc != 0 && errno == EINTR);
  const int error = rc == 0 ? 0 : errno;
  ::close(probe);
  if (error == 0 || error == EAGAIN) {
    return absl::ErrnoToStatus(EADDRINUSE, "a server is listening there");
  }
  if (error == ENOENT) return absl::OkStatus();  // gone meanwhile
  if (error != ECONNREFUSED) {
    return absl::ErrnoToStatus(
        error, absl::StrCat("cannot tell whether ", path_, " is a stale socket"));
  }
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot remove the stale socket ", path_));
  }
  return absl::OkStatus();
}

absl::Status UnixSocketFile::bound() {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path_));
  }
  bound_ = true;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  return absl::OkStatus();
}

void UnixSocketFile::remove() {
  if (bound_) {
    bound_ = false;
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(path_.c_str());
    }
  }
  if (lock_fd_ >= 0) {
    // Unlinked while still held: whoever opened it meanwhile sees, once it
    // gets the flock, that it is no longer the file at PATH.lock.
    const std::string lock_path = lockPath();
    struct stat held, named;
    if (::fstat(lock_fd_, &held) == 0 && ::lstat(lock_path.c_str(), &named) == 0 &&
        SameFile(held, named)) {
      ::unlink(lock_path.c_str());
    }
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

UnixSocketFile::~UnixSocketFile() { remove(); }

}  // namespace twist
