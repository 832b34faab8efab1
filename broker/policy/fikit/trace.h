// Decision trace of the fikit policy: what it saw and decided, kept in memory and written as CSV
// when the policy exits. Off unless FIKIT_TRACE names a file. It answers the question the status
// counters cannot: within the idle gaps of the levels above, was a LP task waiting and denied
// (and why), running, or not asking at all? (benchmarks/gpu/trace_report.py reads it.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fikit::broker::fikit_policy {

enum class TraceKind : char {
  kSubmit = 'S',    // a = ring position
  kComplete = 'C',  // a = issue time, b = done time (t = done)
  kIdle = 'I',      // the tenant drained: its gap opens; a = predicted length at start (0: none)
  kGrant = 'G',     // verdict; a = predicted end of the grant, b = the gap's predicted end
  kDeny = 'D',      // verdict; a = predicted cost, b = room left in the gap
};

// A grant's or a deny's verdict (written as its number): the fill decision's (FillVerdict, same
// values), or why a request was held before any fill decision. 0 in other records.
enum class TraceVerdict : uint8_t {
  kGrant = 0,
  kGrantToMeasure = 1,
  kGrantRisky = 2,
  kNoRoom = 3,
  kNeedLongGap = 4,
  kGrantBudget = 5,      // did not fit, admitted within the HP budget (risk.h)
  kGrantBurst = 6,       // launched inside its tenant's burst (burst.h)
  kHeldInFlight = 100,   // max_lp_in_flight grants are running
  kHeldAboveBusy = 101,  // a level above is busy: no gap at all
};

struct TraceRecord {
  uint64_t t_ns;
  uint64_t key;
  uint64_t a;
  uint64_t b;
  uint32_t tenant;
  TraceKind kind;
  TraceVerdict verdict;
};

class Trace {
 public:
  // Enable if FIKIT_TRACE is set: keep up to FIKIT_TRACE_RECORDS (default 4M) records. GPU k > 0's
  // domain writes FIKIT_TRACE.gpu<k>.
  void open_from_env(uint32_t gpu = 0);
  bool on() const { return !path_.empty(); }
  void add(TraceKind kind, uint64_t t_ns, uint32_t tenant, uint64_t key, uint64_t a = 0,
           uint64_t b = 0, TraceVerdict verdict = TraceVerdict::kGrant) noexcept {
    if (path_.empty()) return;
    if (records_.size() == records_.capacity()) {
      dropped_++;
      return;
    }
    records_.push_back({t_ns, key, a, b, tenant, kind, verdict});
  }
  // Write the CSV; return an error message, or "" on success (or when off).
  std::string write() const;

 private:
  std::string path_;
  std::vector<TraceRecord> records_;
  uint64_t dropped_ = 0;
};

}  // namespace fikit::broker::fikit_policy
