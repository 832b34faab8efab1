// Parsing of the HP latency budget.
#include "policy/budget.h"

#include <cstdio>
#include <cstdlib>

namespace fikit::broker {

namespace {

constexpr const char* kHow = " (write p99=1.10, p50=1.05,p99=1.10 or off)";

bool fail(std::string* err, const std::string& what) {
  *err = what + kHow;
  return false;
}

}  // namespace

bool hp_budget_parse(std::string_view spec, HpBudget* out, std::string* err) {
  if (spec == "off") {
    *out = HpBudget{0, 0};
    return true;
  }
  if (spec.empty()) return fail(err, "empty HP budget");
  HpBudget b{0, 0};
  bool seen50 = false, seen99 = false;
  while (true) {
    size_t comma = spec.find(',');
    std::string_view pair = spec.substr(0, comma);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos)
      return fail(err, "'" + std::string(pair) + "' is not QUANTILE=SLOWDOWN");
    std::string_view q = pair.substr(0, eq);
    std::string value(pair.substr(eq + 1));
    bool is50 = q == "p50", is99 = q == "p99";
    if (!is50 && !is99)
      return fail(err, "unknown quantile '" + std::string(q) + "': the budget bounds p50 and p99");
    if ((is50 && seen50) || (is99 && seen99)) return fail(err, std::string(q) + " given twice");
    char* end = nullptr;
    double v = value.empty() ? 0 : std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(v >= kBudgetMin && v <= kBudgetMax)) {
      char range[64];
      std::snprintf(range, sizeof range, "a slowdown from %.1f to %.0f", kBudgetMin, kBudgetMax);
      return fail(err, std::string(q) + "='" + value + "': want " + range);
    }
    (is50 ? b.p50 : b.p99) = v;
    (is50 ? seen50 : seen99) = true;
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  *out = b;
  return true;
}

std::string hp_budget_string(const HpBudget& b) {
  if (b.off()) return "off";
  char buf[64];
  if (b.p50 > 0 && b.p99 > 0)
    std::snprintf(buf, sizeof buf, "p50=%.3g,p99=%.3g", b.p50, b.p99);
  else
    std::snprintf(buf, sizeof buf, "%s=%.3g", b.p50 > 0 ? "p50" : "p99", b.p50 > 0 ? b.p50 : b.p99);
  return buf;
}

}  // namespace fikit::broker
