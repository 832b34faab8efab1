#include "sched/idle_status.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace fikit::broker {

std::string idle_status_text(const nlohmann::json& h) {
  char buf[400];
  auto share = [](const nlohmann::json& v) { return v.is_number() ? 100 * v.get<double>() : 0.0; };
  snprintf(buf, sizeof(buf),
           "HP idleness (marker after 1 in %u launches): %llu gaps, %.1f ms idle, %.1f%% "
           "recognized as drained; lateness p50 %.1f us, p99 %.1f us; gaps >= %llu us: "
           "%.1f%% recognized\n",
           h.value("marker_every", 0u), h.value("gaps", 0ull), h.value("idle_ms", 0.0),
           share(h.value("recognized_share", nlohmann::json())), h.value("late_p50_us", 0.0),
           h.value("late_p99_us", 0.0), h.value("long_gap_us", 0ull),
           share(h.value("long_recognized_share", nlohmann::json())));
  return buf;
}

}  // namespace fikit::broker
