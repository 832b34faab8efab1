// Switch-back costs measured per GPU, kept across broker restarts in <run_dir>/switch-cost.json:
// {"GPU-<uuid>": {"switch_us": X, "driver": "<version>"}}. A stored cost is reused for the same
// GPU and driver version, so a broker restarted while tenants keep the GPU busy never measures
// (a measurement under load is wrong, and that is when restarts happen).
#pragma once

#include <map>
#include <string>

namespace fikit::broker {

struct StoredCost {
  double switch_us = 0;
  std::string driver;
};

// The stored costs (none if the file is missing or unreadable; a bad entry is skipped).
std::map<std::string, StoredCost> read_switch_store(const std::string& run_dir);
// Write them (atomically). Return false with *err on failure.
bool write_switch_store(const std::string& run_dir, const std::map<std::string, StoredCost>& costs,
                        std::string* err);

}  // namespace fikit::broker
