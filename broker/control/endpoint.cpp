#include "control/endpoint.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/log.h"
#include "base/safe_fs.h"

namespace fikit::broker {
namespace {

// Return true if fd is still the file `name` in `dir` (a stopping broker unlinks its lock file).
bool same_file(int fd, const DirFd& dir, const std::string& name) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && fstatat(dir.get(), name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Take the lock file `name` in `dir`; on success it holds our pid. Return its fd or a refusal.
Result<int> take_lock(const DirFd& dir, const std::string& name, const std::string& lock_path,
                      const std::string& socket_path) {
  int fd = -1;
  for (int attempt = 0; attempt < 10; attempt++) {
    fd = open_owned_file(dir, name, O_RDWR, 0644);
    if (fd == -ELOOP || fd == -EPERM || fd == -EINVAL)
      return Status(StatusCode::kPermissionDenied,
                    "refusing the lock file " + lock_path + ": it is " +
                        (fd == -ELOOP   ? std::string("a symlink")
                         : fd == -EPERM ? std::string("another user's file or has other hard links")
                                        : std::string("not a regular file")) +
                        ": remove it and start again");
    if (fd < 0) return Status::from_errno(-fd, "open lock file " + lock_path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || same_file(fd, dir, name)) break;
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

// Bind `fd` to `name` in `dir` with `mode`, with no moment at which the socket has another mode:
// Linux gives the new socket file the mode of the unbound socket's inode (set with fchmod) less
// the umask, so the umask is cleared around the bind. The path goes through /proc/self/fd, so the
// directory is the one checked, whatever happens to its path meanwhile.
Status bind_at(int fd, const DirFd& dir, const std::string& name, mode_t mode,
               const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string via = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + name;
  const std::string& path = access("/proc/self/fd", X_OK) == 0 ? via : socket_path;
  if (path.size() >= sizeof(addr.sun_path))
    return Status(StatusCode::kInvalidArgument, "socket name '" + name + "' is too long");
  memcpy(addr.sun_path, path.data(), path.size());
  if (fchmod(fd, mode) != 0) return Status::from_errno(errno, "set the control socket's mode");
  mode_t old = umask(0);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  if (rc != 0) return Status::from_errno(err, "bind control socket " + socket_path);
  return Status();
}

}  // namespace

std::string lock_path_of(const std::string& socket_path) { return socket_path + ".lock"; }

Result<std::unique_ptr<Endpoint>> Endpoint::open(const std::string& socket_path,
                                                 const std::string& tenant_group) {
  std::unique_ptr<Endpoint> ep(new Endpoint());
  ep->path_ = socket_path;
  ep->lock_path_ = lock_path_of(socket_path);
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path))
    return Status(StatusCode::kInvalidArgument,
                  "socket path '" + socket_path + "' is empty or longer than " +
                      std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                      " bytes: choose a shorter one");
  std::string dir_path = dir_of(socket_path);
  Result<DirFd> dir = open_owned_dir(dir_path, {.create = true, .mode = 0755, .hint = kRunDirHint});
  if (!dir.ok()) return dir.status();
  ep->name_ = base_of(socket_path);
  Result<int> lock = take_lock(*dir, ep->name_ + ".lock", ep->lock_path_, socket_path);
  if (!lock.ok()) return lock.status();
  ep->lock_fd_ = *lock;
  struct stat st;
  if (fstatat(dir->get(), ep->name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status(StatusCode::kAlreadyExists,
                    socket_path +
                        " exists and is not a socket: remove it or choose another "
                        "--socket");
    // We hold the lock, so no broker owns it: a dead broker's leftover.
    FIKIT_LOG_INFO("removing stale socket %s", socket_path.c_str());
    unlinkat(dir->get(), ep->name_.c_str(), 0);
  }
  ep->fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (ep->fd_ < 0) return Status::from_errno(errno, "create control socket");
  gid_t gid = 0;
  mode_t mode = geteuid() == 0 ? 0666 : 0600;
  if (geteuid() == 0 && !tenant_group.empty()) {
    char buf[16384];
    group g, *found = nullptr;
    if (getgrnam_r(tenant_group.c_str(), &g, buf, sizeof(buf), &found) == 0 && found) {
      gid = found->gr_gid;
      mode = 0660;
    }
  }
  // Bound 0660 (or 0600) root:root first: nobody else can connect until the group is set.
  if (Status s = bind_at(ep->fd_, *dir, ep->name_, mode, socket_path); !s.ok()) return s;
  if (gid != 0 && fchownat(dir->get(), ep->name_.c_str(), 0, gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::from_errno(errno,
                              "give control socket " + socket_path + " to group " + tenant_group);
  char text[64];
  snprintf(text, sizeof(text), "mode %04o", static_cast<unsigned>(mode));
  ep->access_ = text;
  if (gid != 0) ep->access_ += ", group " + tenant_group;
  if (listen(ep->fd_, 128) != 0)
    return Status::from_errno(errno, "listen on control socket " + socket_path);
  ep->dir_ = std::move(*dir);
  return ep;
}

Endpoint::~Endpoint() {
  if (fd_ >= 0) close(fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

void Endpoint::remove() {
  if (dir_.get() < 0) return;
  if (fd_ >= 0) unlinkat(dir_.get(), name_.c_str(), 0);
  unlinkat(dir_.get(), (name_ + ".lock").c_str(), 0);
}

}  // namespace fikit::broker
