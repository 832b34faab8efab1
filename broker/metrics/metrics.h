// The broker's Prometheus metrics (docs/STATUS.md "Metrics"): the page of GET /metrics, built
// from the status document (status.h) so that `status` and the metrics say the same thing.
// Per GPU and tenant: labels gpu (the GPU's UUID, or its index when the driver does not say),
// tenant (its name), tenant_id, uid, priority (0 = HP), class (hp or lp), and pod, namespace and
// container when the tenant runs in a Kubernetes pod (base/kube_pod.h; the document's
// "kubernetes"). A tenant that left is on the next page with
// its final counts (the document's "departed_tenants"), then no more.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "metrics/exposition.h"

namespace fikit::broker::metrics {

class MetricsPage {
 public:
  // The page for `doc`, a status document of now with its departed tenants.
  std::string page(const nlohmann::json& doc);

 private:
  void tenant_families(Exposition& e, const nlohmann::json& doc);
};

}  // namespace fikit::broker::metrics
