#include "substrate/substrate_status.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "sched/idle_meter.h"
#include "substrate/substrate.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

// `doc` with member key: value (JSON text) appended before its closing brace.
std::string append_member(const std::string& doc, const char* key, const std::string& value) {
  size_t end = doc.find_last_of('}');
  if (end == std::string::npos) return doc;
  bool empty = doc.find_last_not_of(" \n\t", end - 1) == doc.find('{');
  return doc.substr(0, end) + (empty ? "" : ",") + json(key).dump() + ":" + value + doc.substr(end);
}

std::string idle_line(const json& h) {
  char buf[400];
  auto share = [](const json& v) { return v.is_number() ? 100 * v.get<double>() : 0.0; };
  snprintf(buf, sizeof(buf),
           "HP idleness (marker after 1 in %u launches): %llu gaps, %.1f ms idle, %.1f%% "
           "recognized as drained; lateness p50 %.1f us, p99 %.1f us; gaps >= %llu us: "
           "%.1f%% recognized\n",
           h.value("marker_every", 0u), h.value("gaps", 0ull), h.value("idle_ms", 0.0),
           share(h.value("recognized_share", json())), h.value("late_p50_us", 0.0),
           h.value("late_p99_us", 0.0), h.value("long_gap_us", 0ull),
           share(h.value("long_recognized_share", json())));
  return buf;
}

}  // namespace

std::string add_substrate_status(const std::string& doc, const Substrate& s, const IdleMeter* meter,
                                 size_t max_len) {
  std::string out = append_member(doc, "substrate", s.status_fields());
  if (meter) out = append_member(out, "hp_idle", meter->summary_json());
  return out.size() <= max_len ? out : doc;
}

std::string substrate_status_text(const json& doc) {
  std::string out;
  if (doc.contains("substrate")) {
    const json& s = doc.at("substrate");
    char buf[600];
    std::string pipe = s.value("mps_pipe_dir", std::string());
    snprintf(buf, sizeof(buf), "substrate %s (%s)%s%s, switch-back cost %.0f us (%s)\n",
             s.value("kind", std::string("?")).c_str(), s.value("why", std::string()).c_str(),
             pipe.empty() ? "" : ", MPS pipe directory ", pipe.c_str(),
             s.value("switch_cost_us", 0.0), s.value("switch_cost_source", std::string()).c_str());
    out += buf;
  }
  if (doc.contains("hp_idle")) out += idle_line(doc.at("hp_idle"));
  return out;
}

}  // namespace fikit::broker
