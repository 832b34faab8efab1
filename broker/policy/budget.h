// The HP latency budget: how much slower than alone an HP tenant's requests may get, at p50, at
// p99 or both ("p99=1.10", "p50=1.05,p99=1.10"; "off": no budget, grant only what is predicted
// to fit). Set for the broker (--hp-budget, [start] hp-budget; default p99=1.10) and per HP
// tenant (FIKIT_HP_BUDGET, sent with its registration and checked by the broker).
#pragma once

#include <string>
#include <string_view>

namespace fikit::broker {

struct HpBudget {
  double p50 = 0;     // allowed p50 slowdown (>= 1), 0: not bounded
  double p99 = 1.10;  // allowed p99 slowdown (>= 1), 0: not bounded
  bool off() const { return p50 == 0 && p99 == 0; }
};

inline constexpr double kBudgetMin = 1.0;
inline constexpr double kBudgetMax = 100.0;

// Parse `spec` into *out. Return false with *err saying what is wrong and how to write it; *out
// is then unchanged.
bool hp_budget_parse(std::string_view spec, HpBudget* out, std::string* err);

// The spec of `b` ("p50=1.05,p99=1.10", "off").
std::string hp_budget_string(const HpBudget& b);

}  // namespace fikit::broker
