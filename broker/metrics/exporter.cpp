#include "metrics/exporter.h"

#include <fikit/util.h>

#include <cstring>

#include "base/uring_loop.h"
#include "metrics/exposition.h"

namespace fikit::broker::metrics {

constexpr uint64_t kExpireEveryNs = 1'000'000'000;

Exporter::Exporter(UringLoop& loop, DocFn doc)
    : loop_(loop), doc_(std::move(doc)), http_(loop, "/metrics", [this] {
        return HttpServer::Page{kExpositionContentType, page_.page(doc_())};
      }) {}

Exporter::~Exporter() { loop_.remove(timer_op_); }

Status Exporter::start(const ListenAddress& addr) {
  if (Status s = http_.listen(addr); !s.ok()) return s;
  timer_op_ = loop_.add_timer(kExpireEveryNs, [this] { http_.expire(now_ns()); });
  if (timer_op_ < 0)
    return Status::from_errno(-timer_op_, "arm the metrics timer in the control loop");
  return Status();
}

}  // namespace fikit::broker::metrics
