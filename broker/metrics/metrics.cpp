#include "metrics/metrics.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace fikit::broker::metrics {
namespace {

using nlohmann::json;

double num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// The policy's statistic `key` of tenant t (fikit's, docs/POLICY.md), 0 without.
double policy_num(const json& t, const char* key) {
  auto p = t.find("policy");
  return p != t.end() && p->is_object() ? num(*p, key) : 0.0;
}

std::string gpu_label(const json& doc) {
  if (doc.contains("gpus") && !doc["gpus"].empty()) {
    std::string uuid = doc["gpus"][0].value("uuid", std::string());
    if (!uuid.empty()) return uuid;
  }
  return "0";
}

// One family of per-tenant samples, `value` of each tenant.
struct TenantFamily {
  const char* name;
  const char* type;
  const char* help;
  double (*value)(const json& t);
};

const TenantFamily kTenantFamilies[] = {
    {"fikit_tenant_launches_total", "counter",
     "Launches the broker has seen: HP records and LP requests.",
     [](const json& t) { return num(t, "launches"); }},
    {"fikit_tenant_grants_total", "counter", "LP launches granted.",
     [](const json& t) { return num(t, "granted"); }},
    {"fikit_tenant_passed_through_total", "counter",
     "Launches made without the broker (it was away, or the stream was capturing).",
     [](const json& t) { return num(t, "passed_through"); }},
    {"fikit_tenant_hp_records_dropped_total", "counter", "HP launch records lost to a full ring.",
     [](const json& t) { return num(t, "dropped"); }},
    {"fikit_tenant_grants_expired_total", "counter",
     "Grants not launched within 100 ms, taken back.",
     [](const json& t) { return num(t, "expired"); }},
    {"fikit_tenant_lp_waiting", "gauge", "LP requests waiting for a grant.",
     [](const json& t) { return num(t, "lp_waiting"); }},
    {"fikit_tenant_lp_in_flight", "gauge", "LP launches granted and not yet seen complete.",
     [](const json& t) { return num(t, "lp_in_flight"); }},
    {"fikit_tenant_lp_harvest_seconds_total", "counter",
     "GPU time of this LP tenant's kernels granted into HP gaps (fikit policy).",
     [](const json& t) { return policy_num(t, "fill_busy_ns") * 1e-9; }},
    {"fikit_tenant_gaps_total", "counter", "HP idle gaps seen (fikit policy).",
     [](const json& t) { return policy_num(t, "gaps"); }},
    {"fikit_tenant_gaps_predicted_total", "counter",
     "HP gaps whose length was predicted (fikit policy).",
     [](const json& t) { return policy_num(t, "gaps") - policy_num(t, "gap_unpredicted"); }},
    {"fikit_tenant_gaps_filled_total", "counter",
     "HP gaps LP work was granted into (fikit policy).",
     [](const json& t) { return policy_num(t, "gaps_filled"); }},
    {"fikit_tenant_gap_misses_total", "counter",
     "HP gaps predicted longer than they were (fikit policy).",
     [](const json& t) { return policy_num(t, "gap_misses"); }},
    {"fikit_tenant_fill_misses_total", "counter",
     "HP gaps that ended while LP work granted into them still ran (fikit policy).",
     [](const json& t) { return policy_num(t, "fill_misses"); }},
};

// The HP budget's families (docs/STATUS.md "Metrics"): each HP tenant's request latency
// (histogram) and slowdown against alone, and the budget's slowdowns.
void budget_families(Exposition& e, const json& doc,
                     const std::vector<std::pair<Labels, const json*>>& tenants) {
  e.family("fikit_tenant_hp_request_latency_seconds", "histogram",
           "HP request latency: first launch after a drain to the drain (fikit policy).");
  for (const auto& [labels, t] : tenants) {
    const json* p = t->contains("policy") ? &(*t)["policy"] : nullptr;
    if (!p || !p->contains("request_latency_hist")) continue;
    const json& h = (*p)["request_latency_hist"];
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;
    uint64_t total = 0;
    const json& counts = h["counts"];
    for (size_t i = 0; i < counts.size(); i++) {
      total += counts[i].get<uint64_t>();
      if (i < h["le_us"].size()) {
        bounds.push_back(h["le_us"][i].get<double>() * 1e-6);
        cumulative.push_back(total);
      }
    }
    e.histogram("fikit_tenant_hp_request_latency_seconds", labels, bounds, cumulative,
                num(h, "sum_s"), total);
  }
  e.family("fikit_tenant_hp_slowdown", "gauge",
           "HP request latency over its alone latency, recent requests (fikit policy).");
  for (const auto& [labels, t] : tenants)
    if (t->contains("slowdown") && (*t)["slowdown"].is_object())
      for (const auto& [q, key] : {std::pair{"0.5", "p50"}, std::pair{"0.99", "p99"}})
        if ((*t)["slowdown"].value(key, json()).is_number()) {
          Labels l = labels;
          l.push_back({"quantile", q});
          e.sample("fikit_tenant_hp_slowdown", l, num((*t)["slowdown"], key));
        }
  e.family("fikit_hp_budget_slowdown", "gauge",
           "The HP slowdown the broker allows (--hp-budget) by quantile.");
  if (doc.contains("budget") && doc["budget"].is_object())
    for (const auto& [q, key] : {std::pair{"0.5", "p50"}, std::pair{"0.99", "p99"}})
      if (doc["budget"].value(key, json()).is_number())
        e.sample("fikit_hp_budget_slowdown", {{"quantile", q}}, num(doc["budget"], key));
}

const char* const kHeldReasons[] = {"above_busy", "no_room", "unknown", "in_flight"};

}  // namespace

PodRef pod_of_cgroup(const std::string& text) {
  PodRef r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t kube = line.find("kubepods");
    if (kube == std::string::npos) continue;
    // The pod segment: "pod<UID>" after '/' or '-', up to '/' or ".slice"; systemd writes the
    // UID's '-' as '_'.
    for (size_t at = line.find("pod", kube); at != std::string::npos;
         at = line.find("pod", at + 3)) {
      if (line[at - 1] != '/' && line[at - 1] != '-') continue;
      size_t end = line.find_first_of("/.", at);
      std::string uid = line.substr(at + 3, end == std::string::npos ? end : end - at - 3);
      if (uid.size() < 32) continue;
      for (char& c : uid)
        if (c == '_') c = '-';
      r.pod = uid;
      size_t slash = line.find('/', at);
      if (slash != std::string::npos) {
        std::string rest = line.substr(slash + 1);
        rest = rest.substr(0, rest.find('/'));
        if (size_t dash = rest.rfind('-'); dash != std::string::npos && rest.ends_with(".scope"))
          rest = rest.substr(dash + 1, rest.size() - dash - 1 - 6);
        r.container = rest;
      }
      return r;
    }
  }
  return r;
}

Labels MetricsPage::tenant_labels(const json& t, const std::string& gpu) {
  const pid_t pid = t.value("pid", 0);
  auto it = pods_.find(pid);
  if (it == pods_.end()) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cgroup");
    std::stringstream ss;
    ss << f.rdbuf();
    it = pods_.emplace(pid, pod_of_cgroup(ss.str())).first;
  }
  const uint32_t prio = t.value("priority", 0u);
  Labels l{{"gpu", gpu},
           {"tenant", t.value("name", std::string())},
           {"tenant_id", std::to_string(t.value("id", 0u))},
           {"uid", std::to_string(t.value("uid", 0u))},
           {"priority", std::to_string(prio)},
           {"class", prio == 0 ? "hp" : "lp"}};
  if (!it->second.pod.empty()) {
    l.push_back({"pod", it->second.pod});
    l.push_back({"container", it->second.container});
  }
  return l;
}

void MetricsPage::tenant_families(Exposition& e, const json& doc) {
  const std::string gpu = gpu_label(doc);
  std::vector<std::pair<Labels, const json*>> tenants;
  std::map<pid_t, PodRef> keep;
  auto add = [&](const json& t) {
    tenants.emplace_back(tenant_labels(t, gpu), &t);
    keep[t.value("pid", 0)] = pods_[t.value("pid", 0)];
  };
  for (const json& t : doc["tenants"]) add(t);
  if (doc.contains("departed_tenants"))
    for (const json& t : doc["departed_tenants"]) add(t);
  pods_ = std::move(keep);
  for (const TenantFamily& f : kTenantFamilies) {
    e.family(f.name, f.type, f.help);
    for (const auto& [labels, t] : tenants) e.sample(f.name, labels, f.value(*t));
  }
  e.family("fikit_tenant_lp_held_seconds_total", "counter",
           "Time this LP tenant's requests waited for a grant, by reason (fikit policy).");
  for (const auto& [labels, t] : tenants) {
    const json* held = t->contains("policy") ? &(*t)["policy"] : nullptr;
    if (!held || !held->contains("held_ns")) continue;
    for (const char* reason : kHeldReasons) {
      Labels l = labels;
      l.push_back({"reason", reason});
      e.sample("fikit_tenant_lp_held_seconds_total", l, num((*held)["held_ns"], reason) * 1e-9);
    }
  }
  budget_families(e, doc, tenants);
}

std::string MetricsPage::page(const json& doc) {
  Exposition e;
  const json& b = doc["broker"];
  std::string substrate = doc.contains("substrate") ? doc["substrate"].value("kind", "") : "";
  e.family("fikit_build_info", "gauge", "The broker's version, ABI, policy and substrate.");
  e.sample("fikit_build_info",
           {{"version", doc.value("version", "")},
            {"abi", b.value("abi", "")},
            {"policy", b.value("policy", "")},
            {"substrate", substrate}},
           1);
  e.family("fikit_broker_uptime_seconds", "gauge", "Time since the broker started.");
  e.sample("fikit_broker_uptime_seconds", {}, num(b, "uptime_s"));
  e.family("fikit_broker_cpu_seconds_total", "counter",
           "CPU time of the broker: the whole process, and its scheduler thread.");
  e.sample("fikit_broker_cpu_seconds_total", {{"thread", "all"}}, num(b, "process_cpu_s"));
  e.sample("fikit_broker_cpu_seconds_total", {{"thread", "scheduler"}}, num(b, "scheduler_cpu_s"));
  e.family("fikit_tenants", "gauge", "Tenants registered with the broker, per GPU.");
  e.sample("fikit_tenants", {{"gpu", gpu_label(doc)}}, num(b, "tenants"));
  tenant_families(e, doc);
  if (doc.contains("gpu")) {
    const json& g = doc["gpu"];
    e.family("fikit_bpf_observer_loaded", "gauge", "1 if the eBPF GPU-driver observer runs.");
    e.sample("fikit_bpf_observer_loaded", {}, g.value("observer", "") == "loaded" ? 1 : 0);
    e.family("fikit_bpf_traced_ioctls_total", "counter", "GPU-driver ioctls the observer traced.");
    e.sample("fikit_bpf_traced_ioctls_total", {}, num(g, "traced_ioctls"));
    e.family("fikit_bpf_events_total", "counter", "Events the observer's programs sent.");
    e.sample("fikit_bpf_events_total", {}, num(g, "events"));
    e.family("fikit_bpf_dropped_total", "counter",
             "Events, statistics or objects the observer lost (maps or ring buffer full).");
    e.sample("fikit_bpf_dropped_total", {}, num(g, "dropped"));
    e.family("fikit_gpu_process_device_bytes", "gauge",
             "Device memory of each running GPU process the observer sees.");
    for (const json& p : g.value("processes", json::array()))
      if (p.value("state", "") == "running")
        e.sample("fikit_gpu_process_device_bytes",
                 {{"gpu", gpu_label(doc)},
                  {"pid", std::to_string(p.value("pid", 0))},
                  {"name", p.value("name", "")},
                  {"kind", p.value("kind", "")},
                  {"tenant_id", std::to_string(p.value("tenant", 0u))}},
                 num(p, "device_bytes"));
  }
  return e.text();
}

}  // namespace fikit::broker::metrics
