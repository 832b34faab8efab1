#include "substrate/switch_store.h"

#include <nlohmann/json.hpp>

#include "base/safe_fs.h"

namespace fikit::broker {
namespace {
constexpr const char* kFile = "switch-cost.json";
}

std::map<std::string, StoredCost> read_switch_store(const std::string& run_dir) {
  std::map<std::string, StoredCost> out;
  std::string text;
  if (read_file_nofollow(run_dir + "/" + kFile, &text) != 0) return out;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return out;
  for (auto& [uuid, v] : doc.items()) {
    if (!v.is_object() || !v.contains("switch_us") || !v["switch_us"].is_number()) continue;
    out[uuid] = StoredCost{v["switch_us"].get<double>(), v.value("driver", std::string())};
  }
  return out;
}

bool write_switch_store(const std::string& run_dir, const std::map<std::string, StoredCost>& costs,
                        std::string* err) {
  Result<DirFd> dir = open_owned_dir(run_dir, {.create = true, .mode = 0755, .hint = ""});
  if (!dir.ok()) {
    *err = dir.status().message();
    return false;
  }
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [uuid, c] : costs)
    doc[uuid] = nlohmann::json{{"switch_us", c.switch_us}, {"driver", c.driver}};
  return write_file_atomic(*dir, run_dir, kFile, doc.dump(2) + "\n", 0644, err);
}

}  // namespace fikit::broker
