#include "control/endpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"

namespace fikit::broker {
namespace {

// mkdir -p `dir` with mode 0755. Return 0 or -errno.
int make_dirs(const std::string& dir) {
  if (dir.empty()) return 0;
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (int err = make_dirs(dir.substr(0, slash)); err < 0) return err;
  return mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Return true if fd is still the file at `path` (a stopping broker unlinks its lock file).
bool same_file(int fd, const std::string& path) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

// Take the lock file; on success it holds our pid. Return its fd or a refusal.
Result<int> take_lock(const std::string& lock_path, const std::string& socket_path) {
  int fd = -1;
  for (int attempt = 0; attempt < 10; attempt++) {
    fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::from_errno(errno, "open lock file " + lock_path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || same_file(fd, lock_path)) break;
    close(fd);  // locked a file its broker just unlinked: take the new one
    fd = -1;
  }
  if (fd < 0)
    return Status(StatusCode::kUnavailable,
                  "failed to lock " + lock_path + ": it keeps being replaced");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char pid[32] = {};
    ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
    close(fd);
    if (err != EWOULDBLOCK) return Status::from_errno(err, "lock " + lock_path);
    std::string who = n > 0 ? " (pid " + std::string(pid, strcspn(pid, "\n")) + ")" : "";
    return Status(StatusCode::kAlreadyExists, "another fikit-broker" + who + " is running on " +
                                                  socket_path +
                                                  ": stop it first (fikit-broker stop --socket " +
                                                  socket_path + ") or choose another --socket");
  }
  std::string text = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) < 0)
    FIKIT_LOG_WARN("failed to write pid to %s: %s", lock_path.c_str(), strerror(errno));
  return fd;
}

}  // namespace

std::string lock_path_of(const std::string& socket_path) { return socket_path + ".lock"; }

Result<std::unique_ptr<Endpoint>> Endpoint::open(const std::string& socket_path) {
  std::unique_ptr<Endpoint> ep(new Endpoint());
  ep->path_ = socket_path;
  ep->lock_path_ = lock_path_of(socket_path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path))
    return Status(StatusCode::kInvalidArgument,
                  "socket path '" + socket_path + "' is empty or longer than " +
                      std::to_string(sizeof(addr.sun_path) - 1) + " bytes: choose a shorter one");
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  std::string dir = dir_of(socket_path);
  if (int err = make_dirs(dir); err < 0) return Status::from_errno(-err, "create directory " + dir);
  Result<int> lock = take_lock(ep->lock_path_, socket_path);
  if (!lock.ok()) return lock.status();
  ep->lock_fd_ = *lock;
  struct stat st;
  if (lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status(StatusCode::kAlreadyExists,
                    socket_path +
                        " exists and is not a socket: remove it or choose another "
                        "--socket");
    // We hold the lock, so no broker owns it: a dead broker's leftover.
    FIKIT_LOG_INFO("removing stale socket %s", socket_path.c_str());
    unlink(socket_path.c_str());
  }
  ep->fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (ep->fd_ < 0) return Status::from_errno(errno, "create control socket");
  if (bind(ep->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Status::from_errno(errno, "bind control socket " + socket_path);
  if (chmod(socket_path.c_str(), 0666) != 0)
    return Status::from_errno(errno, "make control socket " + socket_path + " world-writable");
  if (listen(ep->fd_, 128) != 0)
    return Status::from_errno(errno, "listen on control socket " + socket_path);
  return ep;
}

Endpoint::~Endpoint() {
  if (fd_ >= 0) close(fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

void Endpoint::remove() {
  if (fd_ >= 0) unlink(path_.c_str());
  unlink(lock_path_.c_str());
}

}  // namespace fikit::broker
