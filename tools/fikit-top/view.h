// fikit-top's model and screen: successive status documents of the broker (docs/STATUS.md) turned
// into rates per second between two of them, a starving flag for LP tenants, a history per GPU
// of its time split into HP busy, filled (LP kernels in HP gaps) and idle for its sparklines, the
// HP tenants' request latency and slowdown (fields the broker may lack: "-"), and the lines of one
// screen (at most `width` columns and `height` rows). The curses loop and --once both draw them.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fikit::top {

enum class SortKey { kPriority, kLaunchRate, kName };
const char* sort_name(SortKey k);

struct Settings {
  SortKey sort = SortKey::kPriority;
  double starve_after_s = 5;  // LP waiting without a grant for longer: starving
  bool paused = false;
  bool help = false;
};

struct TenantRow {
  uint32_t id = 0;
  uint32_t gpu = 0;  // index in the document's "gpus"
  std::string name;
  uint32_t priority = 0;
  std::string state;
  double launch_rate = 0, grant_rate = 0;
  double harvest_share = 0;  // LP: GPU time granted into HP gaps, per second of wall time
  uint64_t gap_hits = 0, gap_misses = 0, fill_misses = 0;  // HP: since the first sample
  uint32_t waiting = 0;
  double starving_s = 0;  // LP: waiting without a grant for this long (0: not starving)
  // HP: request latency percentiles (us) and slowdown against its alone latency; < 0: unknown.
  double p50_us = -1, p99_us = -1, slow50 = -1, slow99 = -1;
};

// One sample of a GPU's time between two documents, as shares of the wall time.
struct GpuShare {
  double busy = 0;    // HP tenants had work outstanding
  double filled = 0;  // LP kernels ran in HP gaps (fikit)
  double idle = 0;    // the rest
};

class View {
 public:
  // Take a status document sampled at mono_s (seconds, monotonic).
  void update(const nlohmann::json& doc, double mono_s);
  // The screen's lines.
  std::vector<std::string> lines(const Settings& s, size_t width, size_t height) const;
  const std::vector<TenantRow>& rows() const { return rows_; }

 private:
  struct Seen {
    double t = 0;
    uint64_t launches = 0, granted = 0, fill_busy_ns = 0;
    double busy_s = 0;
    uint64_t first_hits = 0, first_misses = 0, first_fill_misses = 0;
    double last_grant_t = 0;  // when its grants last grew (or it was first seen)
  };
  nlohmann::json doc_;
  std::vector<TenantRow> rows_;
  std::map<uint32_t, Seen> seen_;
  std::map<uint32_t, std::deque<GpuShare>> history_;  // per GPU index, newest last
};

// A sparkline of `v` (newest last) in at most `width` characters, ASCII levels " .:-=+*#"
// scaled to `top` (0: to the largest value shown).
std::string sparkline(const std::deque<double>& v, size_t width, double top = 0);

}  // namespace fikit::top
