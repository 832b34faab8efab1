// The broker's /metrics endpoint: the HTTP responder (http_server.h) serving the metrics page
// (metrics.h) from the control loop, and a timer that drops connections past their deadline.
// `--metrics ADDR:PORT` (default 127.0.0.1:9842; `off`: none).
#pragma once

#include <fikit/result.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "metrics/http_server.h"
#include "metrics/metrics.h"

namespace fikit::broker {
class UringLoop;
}

namespace fikit::broker::metrics {

inline constexpr const char* kDefaultMetricsAddress = "127.0.0.1:9842";

class Exporter {
 public:
  // A status document of now with every tenant, and those gone since the last one.
  using DocFn = std::function<nlohmann::json()>;

  Exporter(UringLoop& loop, DocFn doc);
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Listen on `addr` and start the timer.
  Status start(const ListenAddress& addr);
  uint16_t port() const { return http_.port(); }

 private:
  UringLoop& loop_;
  DocFn doc_;
  MetricsPage page_;
  HttpServer http_;
  int timer_op_ = 0;
};

}  // namespace fikit::broker::metrics
