// Formatting of per-tenant policy statistics.
#include "policy/fikit/stats_format.h"

#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>
#include <tuple>

#include "policy/fikit/risk.h"

namespace fikit::broker::fikit_policy {

std::string format_ns(uint64_t ns) {
  char buf[32];
  double v = static_cast<double>(ns);
  if (ns < 1000)
    std::snprintf(buf, sizeof buf, "%lluns", static_cast<unsigned long long>(ns));
  else if (ns < 1000000)
    std::snprintf(buf, sizeof buf, "%.1fus", v / 1e3);
  else if (ns < 1000000000)
    std::snprintf(buf, sizeof buf, "%.2fms", v / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fs", v / 1e9);
  return buf;
}

namespace {

const TenantData* find_tenant(const FikitState& st, uint32_t id) {
  auto it = st.tenants.find(id);
  return it == st.tenants.end() ? nullptr : it->second.get();
}

uint64_t mean(uint64_t sum, uint64_t n) { return n ? sum / n : 0; }

constexpr const char* kHeldNames[] = {"above-busy", "no-room", "unknown", "in-flight"};
static_assert(std::size(kHeldNames) == std::tuple_size_v<decltype(TenantCounters::held_ns)>);

// "    overruns 2  wait mean 12.0us max 1.20ms  held 3.2s above-busy 60% no-room 30% ..."
uint64_t why(const TenantCounters& n, NoRoomWhy w) { return n.no_room_why[static_cast<size_t>(w)]; }

std::string held_line(const TenantCounters& n) {
  uint64_t grants = n.grants_fill + n.grants_full;
  uint64_t held = std::accumulate(n.held_ns.begin(), n.held_ns.end(), uint64_t{0});
  if (!grants && !held) return "";
  std::string out = "    overruns " + std::to_string(n.fill_overruns) + "  wait mean " +
                    format_ns(mean(n.wait_sum_ns, grants)) + " max " + format_ns(n.wait_max_ns) +
                    "  held " + format_ns(held);
  for (size_t i = 0; held && i < n.held_ns.size(); i++) {
    double pct = 100.0 * static_cast<double>(n.held_ns[i]) / static_cast<double>(held);
    char buf[48];
    std::snprintf(buf, sizeof buf, " %s %.0f%%", kHeldNames[i], pct);
    out += buf;
  }
  return out + "\n";
}

// The HP budget's view of an HP tenant: its latency now, alone, and the slowdown between.
struct BudgetView {
  uint64_t count, p50, p99;  // recent requests (RequestMeter window)
  ControllerInput in;
  const char* source;  // of the alone latency: profile, learned, none
  double s50, s99;     // 0: unknown
};

BudgetView budget_view(const FikitState& st, const TenantData& td) {
  BudgetView v{};
  const SampleWindow<RequestMeter::kWindow>& r = td.requests.recent();
  v.count = td.requests.count();
  v.p50 = r.quantile(0.5);
  v.p99 = r.quantile(0.99);
  v.in = controller_input(st, td);
  v.source = !v.in.alone_known                                              ? "none"
             : td.alone_from_profile && td.alone_learned < kMinAloneSamples ? "profile"
                                                                            : "learned";
  if (v.in.alone_known && td.slowdowns.size() > 0) {
    v.s50 = static_cast<double>(td.slowdowns.quantile(0.5)) / HarvestController::kScale /
            v.in.alone_slowdown_p50;
    v.s99 = static_cast<double>(td.slowdowns.quantile(0.99)) / HarvestController::kScale /
            v.in.alone_slowdown_p99;
  }
  return v;
}

// LP work done in the HP gaps since td arrived over the HP idle time since then (-1: none yet).
double harvest_ratio(const FikitState& st, const TenantData& td) {
  uint64_t idle = st.hp_idle_ns - std::min(st.hp_idle_ns, td.hp_idle_at_add);
  return idle ? static_cast<double>(td.counters.harvest_ns) / static_cast<double>(idle) : -1;
}

nlohmann::json or_null(double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string budget_line(const FikitState& st, const TenantData& td) {
  BudgetView v = budget_view(st, td);
  char buf[240];
  std::snprintf(buf, sizeof buf,
                "    requests %llu p50 %s p99 %s  alone %s/%s (%s)  slowdown %.2f/%.2f  "
                "budget %s gain %.2f %s\n",
                static_cast<unsigned long long>(v.count), format_ns(v.p50).c_str(),
                format_ns(v.p99).c_str(), format_ns(v.in.alone_p50_ns).c_str(),
                format_ns(v.in.alone_p99_ns).c_str(), v.source, v.s50, v.s99,
                hp_budget_string(td.budget).c_str(), td.controller.gain(),
                controller_state_name(td.controller.state()));
  return buf;
}

}  // namespace

std::string tenant_stats_text(const FikitState& st, uint32_t id) {
  const TenantData* td = find_tenant(st, id);
  if (!td) return "";
  const TenantCounters& n = td->counters;
  uint64_t scored = n.gap_hits + n.gap_misses;
  char l1[160], l2[160];
  std::snprintf(
      l1, sizeof l1,
      "    kernels %llu  keys %u/%u  gaps %llu: hit %llu miss %llu (%.0f%%)  fill-miss "
      "%llu\n",
      static_cast<unsigned long long>(n.kernels), td->keys.size(), td->keys.max_keys(),
      static_cast<unsigned long long>(n.gaps), static_cast<unsigned long long>(n.gap_hits),
      static_cast<unsigned long long>(n.gap_misses),
      scored ? 100.0 * static_cast<double>(n.gap_hits) / static_cast<double>(scored) : 0.0,
      static_cast<unsigned long long>(n.fill_misses));
  std::string pred = format_ns(mean(n.pred_sum_ns, scored));
  std::string actual = format_ns(mean(n.actual_sum_ns, scored));
  std::string into = format_ns(n.lp_into_gaps_ns);
  std::string busy = format_ns(n.fill_busy_ns);
  std::snprintf(l2, sizeof l2,
                "    gap pred/actual %s/%s  LP into gaps %llu (%s)  as LP: fill %llu (%s) full "
                "%llu\n",
                pred.c_str(), actual.c_str(), static_cast<unsigned long long>(n.lp_into_gaps),
                into.c_str(), static_cast<unsigned long long>(n.grants_fill), busy.c_str(),
                static_cast<unsigned long long>(n.grants_full));
  std::string out = std::string(l1) + l2;
  if (td->priority != kPriorityHigh) out += held_line(n);
  if (td->priority == kPriorityHigh) out += budget_line(st, *td);
  if (td->priority != kPriorityHigh && st.hp_idle_ns > td->hp_idle_at_add) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "    harvest %.1f%% of HP idle time  within budget %llu\n",
                  100 * harvest_ratio(st, *td), static_cast<unsigned long long>(n.grants_budget));
    out += buf;
  }
  if (n.bursts > 0) {
    char buf[112];
    std::snprintf(buf, sizeof buf,
                  "    bursts %llu (for %llu kernels)  launched in them %llu (after the HP's "
                  "return %llu)\n",
                  static_cast<unsigned long long>(n.bursts),
                  static_cast<unsigned long long>(n.burst_kernels),
                  static_cast<unsigned long long>(n.grants_burst),
                  static_cast<unsigned long long>(n.burst_late));
    out += buf;
  }
  if (td->priority == kPriorityHigh && td->marker_every != UINT32_MAX)
    out += "    markers " + (td->marker_every ? "1/" + std::to_string(td->marker_every) : "off") +
           "  durations measured " + std::to_string(n.durations) + "\n";
  if (!td->profile_note.empty()) out += "    profile: " + td->profile_note + "\n";
  return out;
}

std::string tenant_stats_json(const FikitState& st, uint32_t id) {
  const TenantData* td = find_tenant(st, id);
  if (!td) return "{}";
  const TenantCounters& n = td->counters;
  uint64_t scored = n.gap_hits + n.gap_misses;
  uint64_t no_room = std::accumulate(n.no_room_why.begin(), n.no_room_why.end(), uint64_t{0});
  nlohmann::json j = {
      {"tenant", td->name},
      {"priority", td->priority},
      {"kernels", n.kernels},
      {"keys", td->keys.size()},
      {"max_keys", td->keys.max_keys()},
      {"key_evictions", td->keys.evictions()},
      {"durations_measured", n.durations},
      {"gaps", n.gaps},
      {"gap_hits", n.gap_hits},
      {"gap_misses", n.gap_misses},
      {"gap_unpredicted", n.gap_unpredicted},
      {"fill_misses", n.fill_misses},
      {"gap_predicted_mean_ns", mean(n.pred_sum_ns, scored)},
      {"gap_actual_mean_ns", mean(n.actual_sum_ns, scored)},
      {"gaps_filled", n.gaps_filled},
      {"lp_into_gaps", n.lp_into_gaps},
      {"lp_into_gaps_ns", n.lp_into_gaps_ns},
      {"grants_fill", n.grants_fill},
      {"grants_full", n.grants_full},
      {"grants_measure", n.grants_measure},
      {"grants_risky", n.grants_risky},
      {"fill_busy_ns", n.fill_busy_ns},
      {"fill_overruns", n.fill_overruns},
      {"wait_mean_ns", mean(n.wait_sum_ns, n.grants_fill + n.grants_full)},
      {"wait_max_ns", n.wait_max_ns},
      {"held_ns",
       {{"above_busy", n.held_ns[0]},
        {"no_room", n.held_ns[1]},
        {"unknown", n.held_ns[2]},
        {"in_flight", n.held_ns[3]}}},
      {"no_room_why",
       {{"young", why(n, NoRoomWhy::kYoung)},
        {"rate", why(n, NoRoomWhy::kRate)},
        {"not_alone", why(n, NoRoomWhy::kNotAlone)},
        {"gap_over", why(n, NoRoomWhy::kGapOver)},
        {"cap", why(n, NoRoomWhy::kCap)}}},
      {"no_room_cost_mean_ns", mean(n.no_room_cost_ns, no_room)},
      {"no_room_left_mean_ns", mean(n.no_room_left_ns, no_room)},
      {"profile", td->profile_note},
      {"hp_marker_every", td->marker_every == UINT32_MAX ? 0 : td->marker_every},
      {"grants_budget", n.grants_budget},
      {"harvest_ns", n.harvest_ns},
      {"bursts", n.bursts},
      {"burst_kernels", n.burst_kernels},
      {"grants_burst", n.grants_burst},
      {"burst_late", n.burst_late},
  };
  // The HP budget's members (docs/STATUS.md; status.cpp lifts them into the tenant object).
  if (td->priority == kPriorityHigh) {
    BudgetView v = budget_view(st, *td);
    bool known = v.in.alone_known;
    j["request_latency"] = {{"count", v.count}, {"p50_us", v.p50 / 1e3}, {"p99_us", v.p99 / 1e3}};
    // Every request by latency, for the metrics' histogram (le_us: upper bounds; the last count
    // is beyond them).
    j["request_latency_hist"] = {{"le_us", RequestMeter::kBoundsUs},
                                 {"counts", td->requests.buckets()},
                                 {"sum_s", static_cast<double>(td->requests.sum_ns()) * 1e-9}};
    j["alone_latency"] = {{"p50_us", known ? nlohmann::json(v.in.alone_p50_ns / 1e3) : nullptr},
                          {"p99_us", known ? nlohmann::json(v.in.alone_p99_ns / 1e3) : nullptr},
                          {"source", v.source}};
    j["slowdown"] = {{"p50", or_null(v.s50)}, {"p99", or_null(v.s99)}};
    j["hp_budget"] = {{"p50", or_null(td->budget.p50)}, {"p99", or_null(td->budget.p99)}};
    const HarvestController& c = td->controller;
    j["controller"] = {{"gain", c.gain()},
                       {"state", controller_state_name(c.state())},
                       {"window_slowdown_p50", or_null(c.slowdown_p50())},
                       {"window_slowdown_p99", or_null(c.slowdown_p99())},
                       {"increases", c.increases()},
                       {"decreases", c.decreases()}};
  } else {
    double h = harvest_ratio(st, *td);
    j["harvest_ratio"] = h >= 0 ? nlohmann::json(h) : nlohmann::json(nullptr);
  }
  return j.dump();
}

}  // namespace fikit::broker::fikit_policy
