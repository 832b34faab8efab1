#include "notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace fikit::broker {
namespace {

std::mutex g_mu;
bool g_read = false;
std::string g_socket;  // "" when systemd is not waiting for us

}  // namespace

bool notify_init() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_read) {
    const char* env = getenv("NOTIFY_SOCKET");
    g_socket = env ? env : "";
    g_read = true;
    unsetenv("NOTIFY_SOCKET");
  }
  return !g_socket.empty();
}

int notify_send(const std::string& state) {
  notify_init();
  std::string path;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    path = g_socket;
  }
  if (path.empty()) return -ENOTCONN;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof(addr.sun_path)) return -EINVAL;
  memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                         (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n =
      sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

int notify_ready(const std::string& status) {
  return notify_send("READY=1\nMAINPID=" + std::to_string(getpid()) + "\nSTATUS=" + status);
}

int notify_stopping(const std::string& status) {
  return notify_send("STOPPING=1\nSTATUS=" + status);
}

int notify_status(const std::string& status) { return notify_send("STATUS=" + status); }

}  // namespace fikit::broker
