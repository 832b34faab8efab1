// The broker's control socket and the lock file next to it (<socket>.lock, holding the broker's
// pid). The lock makes a second broker on the same socket fail cleanly without touching the
// running one; a socket left by a dead broker (lock free) is removed and replaced. The socket's
// directory is opened with open_owned_dir (safe_fs.h) and everything in it is reached through
// that fd: a symlink planted at the lock or the socket is refused, never followed.
#pragma once

#include <fikit/result.h>

#include <memory>
#include <string>

#include "base/safe_fs.h"

namespace fikit::broker {

// What to do when the broker may not create its run directory.
inline constexpr const char* kRunDirHint =
    "run as root, or give --run-dir/--socket in a directory you own";

class Endpoint {
 public:
  // Take the lock, then bind and listen on `socket_path` (SOCK_SEQPACKET). Who may connect: a
  // root broker's socket is root:tenant_group 0660 when that group exists, else 0666 (any uid may
  // register, at its priority ceiling: control/access.h); a non-root broker's is 0600 (it serves
  // its own uid only). The mode is the socket's from its bind on. Creates the socket's directory
  // (0755) if missing.
  static Result<std::unique_ptr<Endpoint>> open(const std::string& socket_path,
                                                const std::string& tenant_group = "");
  // The socket's mode and group, as `open` set them (for the start message).
  const std::string& access_text() const { return access_; }
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Unlink the socket and the lock file (the lock is held until the process exits).
  void remove();

 private:
  Endpoint() = default;
  std::string path_;
  std::string name_;  // of the socket in dir_
  std::string lock_path_;
  DirFd dir_;
  std::string access_;
  int fd_ = -1;
  int lock_fd_ = -1;
};

// The lock file of a socket path.
std::string lock_path_of(const std::string& socket_path);

}  // namespace fikit::broker
