// A minimal HTTP/1.1 responder on the broker's io_uring loop (uring_loop.h), for Prometheus to
// scrape: GET or HEAD of one path, answered with the page a callback builds at that moment, then
// the connection is closed ("Connection: close"). Other paths get 404, other methods 405, a
// request that is not HTTP 400. A request head is at most 8 KiB, and a connection that has not
// sent it within 5 s, or cannot take the answer within 10 s, is dropped: a scraper cannot hold
// the control thread or its memory. No TLS and no authentication: listen on loopback (the
// default) or on an address only the scrapers reach.
#pragma once

#include <fikit/result.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

namespace fikit::broker {
class UringLoop;
}

namespace fikit::broker::metrics {

// "127.0.0.1:9842", "[::1]:9842", "localhost:9842", "0.0.0.0:9842" as an address to listen on.
struct ListenAddress {
  std::string host;  // numeric IPv4 or IPv6 address
  uint16_t port = 0;
};
Result<ListenAddress> parse_listen_address(const std::string& text);

class HttpServer {
 public:
  struct Page {
    std::string content_type;
    std::string body;
  };
  using PageFn = std::function<Page()>;

  HttpServer(UringLoop& loop, std::string path, PageFn page);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listen on `addr` and serve in the loop. Port 0: the kernel picks one (port() says which).
  Status listen(const ListenAddress& addr);
  uint16_t port() const { return port_; }
  // Drop connections older than their deadline (call it from a periodic timer).
  void expire(uint64_t now_ns);

 private:
  struct Conn {
    int fd = -1;
    int poll_op = 0;
    uint64_t deadline_ns = 0;
    std::string in;   // the request head so far
    std::string out;  // what is left to send
    size_t sent = 0;
  };
  void on_accept(int fd);
  void on_readable(int fd);
  void on_writable(int fd);
  // The whole answer to a request head.
  std::string answer(const std::string& head);
  void close_conn(int fd);

  UringLoop& loop_;
  std::string path_;
  PageFn page_;
  int listen_fd_ = -1;
  int accept_op_ = 0;
  uint16_t port_ = 0;
  std::unordered_map<int, Conn> conns_;
};

}  // namespace fikit::broker::metrics
