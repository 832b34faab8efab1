#include "commands.h"

#include <fikit/protocol.h>
#include <fikit/util.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "control/status.h"

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

// Send a header-only request and read its TextReply into `text`; `status` gets the reply's.
// With `c`, the connection stays open there.
Status ask(const std::string& path, MsgType type, Conn* c, int* status, std::string* text) {
  auto reply = std::make_unique<TextReply>();
  int err = ctl_request(path.c_str(), type, reply.get(), kReplyTimeoutMs, c ? &c->fd : nullptr);
  if (err == -ENOENT || err == -ECONNREFUSED)
    return Status(StatusCode::kNotFound,
                  "no fikit-broker is running on " + path + " (" + strerror(-err) + ")");
  if (err == -ENAMETOOLONG)
    return Status(StatusCode::kInvalidArgument, "socket path too long: " + path);
  if (err == -ETIMEDOUT)
    return Status(StatusCode::kUnavailable, "the broker on " + path + " did not answer in 5 s");
  if (err == -EPROTO)
    return Status(StatusCode::kInternal, "malformed reply from the broker on " + path);
  if (err < 0) return Status::from_errno(-err, "ask the broker on " + path);
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
  int status = 0;
  std::string text;
  if (Status s = ask(o.socket, MsgType::kStatus, nullptr, &status, &text); !s.ok()) {
    if (s.code() != StatusCode::kNotFound) return fail(s);
    // No broker: machines get a document too, and the exit code says it (docs/STATUS.md).
    if (o.json) printf("{\"running\": false}\n");
    fail(s);
    return kStatusNotRunningExit;
  }
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
  if (Status s = ask(o.socket, MsgType::kStop, &c, &status, &text); !s.ok()) return fail(s);
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
