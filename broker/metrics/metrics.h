// The broker's Prometheus metrics (docs/STATUS.md "Metrics"): the page of GET /metrics, built
// from the status document (status.h) so that `status` and the metrics say the same thing.
// Per GPU and tenant: labels gpu (the GPU's UUID, or its index when the driver does not say),
// tenant (its name), tenant_id, uid, priority (0 = HP), class (hp or lp), and pod and container
// when the tenant's cgroup names a Kubernetes pod. A tenant that left is on the next page with
// its final counts (the document's "departed_tenants"), then no more.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "metrics/exposition.h"

namespace fikit::broker::metrics {

// The pod UID and container ID in a /proc/<pid>/cgroup text, when it names a Kubernetes pod
// (cgroupfs ".../kubepods/<qos>/pod<UID>/<ID>" or systemd "...-pod<UID>.slice/<rt>-<ID>.scope").
struct PodRef {
  std::string pod;
  std::string container;
};
PodRef pod_of_cgroup(const std::string& cgroup_text);

class MetricsPage {
 public:
  // The page for `doc`, a status document of now with its departed tenants.
  std::string page(const nlohmann::json& doc);

 private:
  void tenant_families(Exposition& e, const nlohmann::json& doc);
  Labels tenant_labels(const nlohmann::json& t, const std::string& gpu);

  std::map<pid_t, PodRef> pods_;  // by pid, for the tenants of the last page
};

}  // namespace fikit::broker::metrics
