#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <fikit/util.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/uring_loop.h"

namespace fikit::broker::metrics {
namespace {

constexpr size_t kMaxHead = 8192;
constexpr size_t kMaxConns = 64;
constexpr uint64_t kHeadTimeoutNs = 5'000'000'000;
constexpr uint64_t kSendTimeoutNs = 10'000'000'000;

std::string response(int code, const char* reason, const std::string& type, const std::string& body,
                     bool with_body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  r += "Content-Type: " + type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (code == 405) r += "Allow: GET, HEAD\r\n";
  r += "Connection: close\r\n\r\n";
  if (with_body) r += body;
  return r;
}

}  // namespace

Result<ListenAddress> parse_listen_address(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::kInvalidArgument,
                  "--metrics " + text + ": " + why + " (expected ADDR:PORT, e.g. 127.0.0.1:9842)");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no port");
  ListenAddress a;
  a.host = text.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  if (a.host == "localhost") a.host = "127.0.0.1";
  const std::string port = text.substr(colon + 1);
  char* end = nullptr;
  unsigned long p = strtoul(port.c_str(), &end, 10);
  if (port.empty() || *end || p > 65535) return bad("bad port");
  a.port = static_cast<uint16_t>(p);
  in6_addr v6;
  in_addr v4;
  if (inet_pton(AF_INET, a.host.c_str(), &v4) != 1 && inet_pton(AF_INET6, a.host.c_str(), &v6) != 1)
    return bad("not a numeric IPv4 or IPv6 address");
  return a;
}

HttpServer::HttpServer(UringLoop& loop, std::string path, PageFn page)
    : loop_(loop), path_(std::move(path)), page_(std::move(page)) {}

HttpServer::~HttpServer() {
  while (!conns_.empty()) close_conn(conns_.begin()->first);
  loop_.remove(accept_op_);
  if (listen_fd_ >= 0) close(listen_fd_);
}

Status HttpServer::listen(const ListenAddress& a) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  in_addr v4;
  if (inet_pton(AF_INET, a.host.c_str(), &v4) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    sin->sin_addr = v4;
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a.port);
    if (inet_pton(AF_INET6, a.host.c_str(), &sin6->sin6_addr) != 1)
      return Status(StatusCode::kInvalidArgument, "not an address: " + a.host);
    len = sizeof(sockaddr_in6);
  }
  const std::string where = a.host + ":" + std::to_string(a.port);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::from_errno(errno, "create the metrics socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) {
    int err = errno;
    close(fd);
    return Status::from_errno(err, "listen for metrics on " + where);
  }
  len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  int op = loop_.add_accept(fd, [this](int c) { on_accept(c); });
  if (op < 0) {
    close(fd);
    return Status::from_errno(-op, "watch the metrics socket in the control loop");
  }
  listen_fd_ = fd;
  accept_op_ = op;
  return Status();
}

void HttpServer::on_accept(int fd) {
  if (fd < 0) return;  // the loop re-arms; a failed accept is the client's loss
  if (conns_.size() >= kMaxConns) {
    close(fd);
    return;
  }
  int op = loop_.add_poll(fd, [this, fd](uint32_t) { on_readable(fd); });
  if (op < 0) {
    close(fd);
    return;
  }
  Conn& c = conns_[fd];
  c.fd = fd;
  c.poll_op = op;
  c.deadline_ns = now_ns() + kHeadTimeoutNs;
}

void HttpServer::on_readable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  // Read all there is: a multishot poll reports new data, not data left unread.
  size_t end = std::string::npos;
  while (end == std::string::npos && c.in.size() < kMaxHead) {
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return close_conn(fd);
    c.in.append(buf, static_cast<size_t>(n));
    end = c.in.find("\r\n\r\n");
  }
  c.out = end == std::string::npos ? response(431, "Request Header Fields Too Large", "text/plain",
                                              "request too long\n", true)
                                   : answer(c.in.substr(0, end));
  c.in.clear();
  loop_.remove(c.poll_op);
  c.deadline_ns = now_ns() + kSendTimeoutNs;
  c.poll_op = loop_.add_poll(
      fd, [this, fd](uint32_t) { on_writable(fd); }, POLLOUT);
  if (c.poll_op < 0) close_conn(fd);
}

void HttpServer::on_writable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  while (c.sent < c.out.size()) {
    ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // the next POLLOUT goes on
    if (n <= 0) break;
    c.sent += static_cast<size_t>(n);
  }
  close_conn(fd);
}

std::string HttpServer::answer(const std::string& head) {
  // Request line: METHOD SP target SP HTTP/1.x
  size_t line_end = head.find("\r\n");
  std::string line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 7, "HTTP/1.") != 0)
    return response(400, "Bad Request", "text/plain", "not an HTTP/1 request\n", true);
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only)
    return response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", true);
  if (target != path_)
    return response(404, "Not Found", "text/plain", "the metrics are at " + path_ + "\n",
                    !head_only);
  Page p = page_();
  return response(200, "OK", p.content_type, p.body, !head_only);
}

void HttpServer::expire(uint64_t now) {
  std::vector<int> late;
  for (const auto& [fd, c] : conns_)
    if (now > c.deadline_ns) late.push_back(fd);
  for (int fd : late) close_conn(fd);
}

void HttpServer::close_conn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  loop_.remove(it->second.poll_op);
  close(fd);
  conns_.erase(it);
}

}  // namespace fikit::broker::metrics
