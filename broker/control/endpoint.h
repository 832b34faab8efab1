// The broker's control socket and the lock file next to it (<socket>.lock, holding the broker's
// pid). The lock makes a second broker on the same socket fail cleanly without touching the
// running one; a socket left by a dead broker (lock free) is removed and replaced.
#pragma once

#include <fikit/result.h>

#include <memory>
#include <string>

namespace fikit::broker {

class Endpoint {
 public:
  // Take the lock, then bind and listen on `socket_path` (SOCK_SEQPACKET, mode 0666: any uid may
  // register). Creates the socket's directory if missing.
  static Result<std::unique_ptr<Endpoint>> open(const std::string& socket_path);
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
  std::string lock_path_;
  int fd_ = -1;
  int lock_fd_ = -1;
};

// The lock file of a socket path.
std::string lock_path_of(const std::string& socket_path);

}  // namespace fikit::broker
