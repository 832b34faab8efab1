// Parsing of fikit policy tunables.
#include "policy/fikit/params.h"

#include <cstdlib>
#include <string>

#include "policy/fikit/plog.h"

namespace fikit::broker::fikit_policy {

namespace {

enum class Kind { kQuantile, kFactor, kCount, kNs };

struct Field {
  const char* name;
  Kind kind;
  double FikitParams::*d;
  uint64_t FikitParams::*ns;
  uint32_t FikitParams::*n;
};

constexpr Field kFields[] = {
    {"gap_quantile", Kind::kQuantile, &FikitParams::gap_quantile, nullptr, nullptr},
    {"duration_quantile", Kind::kQuantile, &FikitParams::duration_quantile, nullptr, nullptr},
    {"delay_quantile", Kind::kQuantile, &FikitParams::delay_quantile, nullptr, nullptr},
    {"default_delay", Kind::kNs, nullptr, &FikitParams::default_delay_ns, nullptr},
    {"min_gap_samples", Kind::kCount, nullptr, nullptr, &FikitParams::min_gap_samples},
    {"min_tenant_gap_samples", Kind::kCount, nullptr, nullptr,
     &FikitParams::min_tenant_gap_samples},
    {"measure_gap", Kind::kNs, nullptr, &FikitParams::measure_gap_ns, nullptr},
    {"starve_wait", Kind::kNs, nullptr, &FikitParams::starve_wait_ns, nullptr},
    {"risky_every", Kind::kNs, nullptr, &FikitParams::risky_every_ns, nullptr},
    {"inactive", Kind::kNs, nullptr, &FikitParams::inactive_ns, nullptr},
    {"miss_backoff", Kind::kQuantile, &FikitParams::miss_backoff, nullptr, nullptr},
    {"miss_tolerance", Kind::kFactor, &FikitParams::miss_tolerance, nullptr, nullptr},
    {"miss_window", Kind::kCount, nullptr, nullptr, &FikitParams::miss_window},
    {"miss_tolerance_ts", Kind::kFactor, &FikitParams::miss_tolerance_ts, nullptr, nullptr},
    {"miss_slack", Kind::kNs, nullptr, &FikitParams::miss_slack_ns, nullptr},
    {"min_factor", Kind::kFactor, &FikitParams::min_factor, nullptr, nullptr},
    {"recover_hits", Kind::kCount, nullptr, nullptr, &FikitParams::recover_hits},
    {"max_keys", Kind::kCount, nullptr, nullptr, &FikitParams::max_keys},
    {"window", Kind::kCount, nullptr, nullptr, &FikitParams::window},
    {"min_recheck", Kind::kNs, nullptr, &FikitParams::min_recheck_ns, nullptr},
    {"switch_gap_factor", Kind::kFactor, &FikitParams::switch_gap_factor, nullptr, nullptr},
    {"hp_marker_every", Kind::kCount, nullptr, nullptr, &FikitParams::hp_marker_every},
    {"hp_marker_learn_every", Kind::kCount, nullptr, nullptr, &FikitParams::hp_marker_learn_every},
    {"hp_marker_learn_samples", Kind::kCount, nullptr, nullptr,
     &FikitParams::hp_marker_learn_samples},
    {"hp_nosync_submits", Kind::kCount, nullptr, nullptr, &FikitParams::hp_nosync_submits},
    {"overlap_cost_mps", Kind::kFactor, &FikitParams::overlap_cost_mps, nullptr, nullptr},
    {"overlap_cost_ts", Kind::kFactor, &FikitParams::overlap_cost_ts, nullptr, nullptr},
    {"learn_overlap_cost", Kind::kCount, nullptr, nullptr, &FikitParams::learn_overlap_cost},
    {"risk_residual", Kind::kCount, nullptr, nullptr, &FikitParams::risk_residual},
    {"slow_start", Kind::kCount, nullptr, nullptr, &FikitParams::slow_start},
    {"quiet_sleep", Kind::kCount, nullptr, nullptr, &FikitParams::quiet_sleep},
    {"measure_poll", Kind::kNs, nullptr, &FikitParams::measure_poll_ns, nullptr},
    {"burst_max", Kind::kCount, nullptr, nullptr, &FikitParams::burst_max},
    {"burst_full", Kind::kNs, nullptr, &FikitParams::burst_full_ns, nullptr},
};

// Split "measure_gap_us" into the field "measure_gap" and its unit multiplier.
bool split_unit(std::string_view name, std::string_view* base, uint64_t* mult) {
  static constexpr std::pair<const char*, uint64_t> kUnits[] = {
      {"_ns", 1}, {"_us", 1000}, {"_ms", 1000000}};
  for (const auto& [suffix, m] : kUnits) {
    std::string_view s(suffix);
    if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
      *base = name.substr(0, name.size() - s.size());
      *mult = m;
      return true;
    }
  }
  return false;
}

bool apply(std::string_view pair, FikitParams* p, std::string* err) {
  size_t eq = pair.find('=');
  if (eq == std::string_view::npos) {
    *err = "expected name=value, got '" + std::string(pair) + "'";
    return false;
  }
  std::string_view name = pair.substr(0, eq);
  std::string value(pair.substr(eq + 1));
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || v < 0) {
    *err = "bad value in '" + std::string(pair) + "': expected a number >= 0";
    return false;
  }
  std::string_view base = name;
  uint64_t mult = 1;
  bool has_unit = split_unit(name, &base, &mult);
  for (const Field& f : kFields) {
    if (base != f.name || has_unit != (f.kind == Kind::kNs)) continue;
    if (f.kind == Kind::kQuantile && !(v > 0 && v <= 1)) {
      *err = "'" + std::string(pair) + "': must be in (0, 1]";
      return false;
    }
    if (f.kind == Kind::kQuantile || f.kind == Kind::kFactor) p->*f.d = v;
    if (f.kind == Kind::kCount) p->*f.n = static_cast<uint32_t>(v);
    if (f.kind == Kind::kNs) p->*f.ns = static_cast<uint64_t>(v * static_cast<double>(mult));
    return true;
  }
  *err = "unknown fikit option '" + std::string(name) +
         "' (durations need a unit suffix: _ns, _us or _ms; see docs/POLICY.md)";
  return false;
}

}  // namespace

bool params_parse(std::string_view spec, FikitParams* p, std::string* err) {
  FikitParams out = *p;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view pair = spec.substr(0, comma);
    if (!pair.empty() && !apply(pair, &out, err)) return false;
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  *p = out;
  return true;
}

FikitParams params_for(const PolicyConfig& cfg) {
  FikitParams p;
  std::string err;
  const char* env = std::getenv("FIKIT_POLICY_OPTS");
  if (env && !params_parse(env, &p, &err))
    plog(cfg, kLogWarn, "ignoring FIKIT_POLICY_OPTS: %s", err.c_str());
  if (!cfg.opts.empty() && !params_parse(cfg.opts, &p, &err))
    plog(cfg, kLogWarn, "ignoring --policy-opts: %s", err.c_str());
  return p;
}

}  // namespace fikit::broker::fikit_policy
