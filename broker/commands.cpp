#include "commands.h"

#include <fikit/protocol.h>
#include <fikit/util.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>

#include "status.h"

namespace fikit::broker {
namespace {

constexpr int kReplyTimeoutMs = 5000;
constexpr uint64_t kStopTimeoutNs = 30'000'000'000;

// A connected socket, closed on scope exit.
struct Conn {
  int fd = -1;
  ~Conn() {
    if (fd >= 0) close(fd);
  }
};

Status connect_broker(const std::string& path, Conn* c) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return Status(StatusCode::kInvalidArgument, "socket path too long: " + path);
  memcpy(addr.sun_path, path.data(), path.size());
  c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return Status::from_errno(errno, "create a socket");
  if (connect(c->fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return Status();
  int err = errno;
  if (err == ENOENT || err == ECONNREFUSED)
    return Status(StatusCode::kUnavailable,
                  "no fikit-broker is running on " + path + " (" + strerror(err) + ")");
  return Status::from_errno(err, "connect to " + path);
}

// Send a header-only request and read its TextReply into `text`; `status` gets the reply's.
Status ask(const std::string& path, MsgType type, MsgType reply_type, Conn* c, int* status,
           std::string* text) {
  if (Status s = connect_broker(path, c); !s.ok()) return s;
  SimpleRequest req{msg_header(type, sizeof(SimpleRequest)), 0, 0};
  if (send(c->fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req))
    return Status::from_errno(errno, "send a request to " + path);
  pollfd p{c->fd, POLLIN, 0};
  if (poll(&p, 1, kReplyTimeoutMs) != 1)
    return Status(StatusCode::kUnavailable, "the broker on " + path + " did not answer in 5 s");
  auto reply = std::make_unique<TextReply>();
  ssize_t n = recv(c->fd, reply.get(), sizeof(TextReply), 0);
  if (n < 0) return Status::from_errno(errno, "read the reply from " + path);
  auto len = static_cast<size_t>(n);
  if (len < offsetof(TextReply, text) + 1 || reply->hdr.magic != kMsgMagic ||
      reply->hdr.type != static_cast<uint32_t>(reply_type) || reply->hdr.size != len ||
      reply->text_len > len - offsetof(TextReply, text) - 1)
    return Status(StatusCode::kInternal, "malformed reply from the broker on " + path);
  *status = reply->status;
  text->assign(reply->text, reply->text_len);
  return Status();
}

int fail(const Status& s) {
  fprintf(stderr, "fikit-broker: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

int status_command(const Options& o) {
  Conn c;
  int status = 0;
  std::string text;
  if (Status s = ask(o.socket, MsgType::kStatus, MsgType::kStatusReply, &c, &status, &text);
      !s.ok())
    return fail(s);
  if (status != 0) return fail(Status(StatusCode::kInternal, "status failed: " + text));
  if (o.json) {
    printf("%s\n", text.c_str());
    return 0;
  }
  Result<std::string> table = status_text(text);
  if (!table.ok()) return fail(table.status());
  fputs(table->c_str(), stdout);
  return 0;
}

int stop_command(const Options& o) {
  Conn c;
  int status = 0;
  std::string text;
  if (Status s = ask(o.socket, MsgType::kStop, MsgType::kStopReply, &c, &status, &text); !s.ok())
    return fail(s);
  if (status != 0) return fail(Status(StatusCode::kPermissionDenied, text));
  // The broker keeps this connection open until its process is gone: wait for end of file.
  uint64_t deadline = now_ns() + kStopTimeoutNs;
  char byte;
  while (now_ns() < deadline) {
    pollfd p{c.fd, POLLIN, 0};
    if (poll(&p, 1, 1000) == 1 && recv(c.fd, &byte, 1, MSG_DONTWAIT) <= 0) {
      printf("fikit-broker: stopped (socket %s)\n", o.socket.c_str());
      return 0;
    }
  }
  return fail(Status(StatusCode::kUnavailable,
                     "the broker on " + o.socket + " accepted the stop but is still running"));
}

}  // namespace fikit::broker
