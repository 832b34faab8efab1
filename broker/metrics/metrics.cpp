#include "metrics/metrics.h"

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

// The gpu label of GPU `index` of the document: its UUID, else its index.
std::string gpu_label(const json& doc, size_t index = 0) {
  if (doc.contains("gpus") && doc["gpus"].size() > index) {
    std::string uuid = doc["gpus"][index].value("uuid", std::string());
    if (!uuid.empty()) return uuid;
  }
  return std::to_string(index);
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
    {"fikit_tenant_busy_seconds_total", "counter",
     "Time the tenant had launches outstanding (issued, not yet seen complete).",
     [](const json& t) { return num(t, "busy_s"); }},
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
      for (const char* key : {"p50", "p99"})
        if ((*t)["slowdown"].value(key, json()).is_number()) {
          Labels l = labels;
          l.push_back({"percentile", key});  // "quantile" is reserved to summaries
          e.sample("fikit_tenant_hp_slowdown", l, num((*t)["slowdown"], key));
        }
  e.family("fikit_hp_budget_slowdown", "gauge",
           "The HP slowdown the broker allows (--hp-budget) by percentile.");
  if (doc.contains("budget") && doc["budget"].is_object())
    for (const char* key : {"p50", "p99"})
      if (doc["budget"].value(key, json()).is_number())
        e.sample("fikit_hp_budget_slowdown", {{"percentile", key}}, num(doc["budget"], key));
}

const char* const kHeldReasons[] = {"above_busy", "no_room", "unknown", "in_flight"};

}  // namespace

namespace {

// A tenant's labels: gpu, tenant, tenant_id, uid, priority, class; and its pod's, if any.
Labels tenant_labels(const json& t, const std::string& gpu) {
  const uint32_t prio = t.value("priority", 0u);
  Labels l{{"gpu", gpu},
           {"tenant", t.value("name", std::string())},
           {"tenant_id", std::to_string(t.value("id", 0u))},
           {"uid", std::to_string(t.value("uid", 0u))},
           {"priority", std::to_string(prio)},
           {"class", prio == 0 ? "hp" : "lp"}};
  if (auto k = t.find("kubernetes"); k != t.end() && k->is_object()) {
    l.push_back({"pod_uid", k->value("pod_uid", "")});
    for (const char* key : {"pod", "namespace", "container"})
      if (std::string v = k->value(key, ""); !v.empty()) l.push_back({key, v});
  }
  return l;
}

}  // namespace

void MetricsPage::tenant_families(Exposition& e, const json& doc) {
  std::vector<std::pair<Labels, const json*>> tenants;
  // One registration per (tenant, GPU): its samples carry that GPU's label.
  auto add = [&](const json& t) {
    tenants.emplace_back(tenant_labels(t, gpu_label(doc, t.value("gpu", size_t{0}))), &t);
  };
  for (const json& t : doc["tenants"]) add(t);
  if (doc.contains("departed_tenants"))
    for (const json& t : doc["departed_tenants"]) add(t);
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
  e.family("fikit_grant_latency_seconds", "histogram",
           "Time from an LP request (the tenant's timestamp) to its grant.");
  for (const auto& [labels, t] : tenants) {
    auto h = t->find("grant_latency");
    if (h == t->end() || !h->is_object()) continue;
    std::vector<double> le;
    std::vector<uint64_t> cumulative;
    for (const json& v : h->value("le_s", json::array())) le.push_back(v.get<double>());
    for (const json& v : h->value("cumulative", json::array()))
      cumulative.push_back(v.get<uint64_t>());
    if (le.size() != cumulative.size()) continue;
    e.histogram("fikit_grant_latency_seconds", labels, le, cumulative, num(*h, "sum_s"),
                h->value("count", uint64_t{0}));
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
  if (!doc.contains("gpus") || doc["gpus"].size() <= 1) {
    e.sample("fikit_tenants", {{"gpu", gpu_label(doc)}}, num(b, "tenants"));
  } else {  // one registration per (tenant, GPU): each GPU's section lists its own
    for (size_t i = 0; i < doc["gpus"].size(); i++)
      e.sample("fikit_tenants", {{"gpu", gpu_label(doc, i)}},
               static_cast<double>(doc["gpus"][i].value("tenants", json::array()).size()));
  }
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
    e.family("fikit_bpf_program_runs_total", "counter",
             "Runs of each of the observer's BPF programs (counted while BPF statistics are on: "
             "--bpf-stats).");
    for (const json& p : g.value("programs", json::array()))
      e.sample("fikit_bpf_program_runs_total",
               {{"program", p.value("name", "")}, {"id", std::to_string(p.value("id", 0u))}},
               num(p, "runs"));
    e.family("fikit_bpf_program_run_seconds_total", "counter",
             "Time the kernel spent in each of the observer's BPF programs (while BPF "
             "statistics are on: --bpf-stats).");
    for (const json& p : g.value("programs", json::array()))
      e.sample("fikit_bpf_program_run_seconds_total",
               {{"program", p.value("name", "")}, {"id", std::to_string(p.value("id", 0u))}},
               num(p, "run_ns") * 1e-9);
    e.family("fikit_bpf_stats_enabled", "gauge",
             "1 if the broker holds the kernel's BPF run-time statistics on (--bpf-stats).");
    e.sample("fikit_bpf_stats_enabled", {}, g.value("run_stats", false) ? 1 : 0);
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
