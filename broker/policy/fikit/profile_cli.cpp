// Profile commands for the CLI: show, export, import, list.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "policy/fikit/fikit.h"
#include "policy/fikit/key_names.h"
#include "policy/fikit/profile.h"
#include "policy/fikit/stats_format.h"

namespace fikit::broker {

namespace fp = fikit_policy;

namespace {

// Load the profile of `name` from dir into *td (a tenant with default parameters).
bool load_named(const std::string& dir, const std::string& name, uint32_t uid,
                std::unique_ptr<fp::TenantData>* td, std::string* text, std::string* err) {
  if (std::string why = fp::profile_name_problem(name); !why.empty()) {
    *err = "bad tenant name '" + name + "': " + why;
    return false;
  }
  fp::FikitParams p;
  p.max_keys = UINT32_MAX;  // show everything the file holds
  *td = std::make_unique<fp::TenantData>(0, name, 0, p);
  (*td)->uid = uid;
  std::string path = fp::profile_path(dir, name, uid), why;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    *err = "no profile named '" + name + "'" + (uid ? " of uid " + std::to_string(uid) : "") +
           " in " + dir + " (see fikit-broker profile list)";
    return false;
  }
  if (!fp::read_text_file(path, text, &why) ||
      !fp::profile_from_json(*text, false, td->get(), &why)) {
    *err = "failed to load profile " + path + ": " + why;
    return false;
  }
  return true;
}

// Kernel names are cut to this many columns in `profile show`.
constexpr size_t kShownNameWidth = 40;

std::string key_line(const fp::KeyStats& k, const std::string& name) {
  std::string gp10 = "-", gp50 = "-";
  if (k.gaps && !k.gaps->empty()) {
    gp10 = fp::format_ns(k.gaps->quantile_low(0.10));
    gp50 = fp::format_ns(k.gaps->quantile_low(0.50));
  }
  std::string d50 = k.duration.empty() ? "-" : fp::format_ns(k.duration.quantile_high(0.5));
  std::string d99 = k.duration.empty() ? "-" : fp::format_ns(k.duration.quantile_high(0.99));
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "0x%016" PRIx64 " %9" PRIu64 " %8s %8s %7" PRIu64 " %8s %8s %7" PRIu64 " %5" PRIu64
                " %5.2f ",
                k.key, k.seen, d50.c_str(), d99.c_str(), k.gap_samples, gp10.c_str(), gp50.c_str(),
                k.pred_misses, k.fill_misses, k.factor);
  return buf + (name.empty() ? std::string("-") : fp::key_name_display(name, kShownNameWidth)) +
         "\n";
}

}  // namespace

bool fikit_profile_show(const std::string& dir, const std::string& name, std::string* out,
                        std::string* err, uint32_t uid) {
  std::unique_ptr<fp::TenantData> td;
  std::string text;
  if (!load_named(dir, name, uid, &td, &text, err)) return false;
  auto j = nlohmann::json::parse(text, nullptr, false);
  std::time_t saved = j.value("saved_unix_s", int64_t{0});
  char when[64] = "unknown";
  if (saved) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&saved));
  *out = "profile of '" + name + "' (" + fp::profile_path(dir, name, uid) + "), saved " + when +
         ", " + std::to_string(td->keys.size()) + " kernel keys, " +
         std::to_string(td->all_gaps.total()) + " recent gaps\n";
  std::vector<const fp::KeyStats*> keys;
  for (const fp::KeyStats& k : td->keys.by_recency()) keys.push_back(&k);
  std::stable_sort(keys.begin(), keys.end(),
                   [](const fp::KeyStats* a, const fp::KeyStats* b) { return a->seen > b->seen; });
  *out +=
      "kernel key              launches  dur p50  dur p99    gaps  gap p10  gap p50  "
      "misses fill- factor kernel\n";
  for (const fp::KeyStats* k : keys) {
    auto n = td->key_names.find(k->key);
    *out += key_line(*k, n == td->key_names.end() ? "" : n->second);
  }
  return true;
}

bool fikit_profile_export(const std::string& dir, const std::string& name, std::string* json,
                          std::string* err, uint32_t uid) {
  std::unique_ptr<fp::TenantData> td;
  return load_named(dir, name, uid, &td, json, err);
}

bool fikit_profile_import(const std::string& dir, const std::string& name, const std::string& json,
                          std::string* err, uint32_t uid) {
  if (std::string why = fp::profile_name_problem(name); !why.empty()) {
    *err = "bad tenant name '" + name + "': " + why;
    return false;
  }
  fp::FikitParams p;
  p.max_keys = UINT32_MAX;
  fp::TenantData td(0, name, 0, p);
  td.uid = uid;
  std::string why;
  if (!fp::profile_from_json(json, true, &td, &why)) {
    *err = "failed to import profile for '" + name + "': " + why;
    return false;
  }
  auto j = nlohmann::json::parse(json);
  if (j.contains("priority") && j["priority"].is_number_unsigned())
    td.priority = j["priority"].get<uint32_t>();
  return fp::profile_save(td, dir, err);
}

bool fikit_profile_remove(const std::string& dir, const std::string& name, std::string* err,
                          uint32_t uid) {
  if (std::string why = fp::profile_name_problem(name); !why.empty()) {
    *err = "bad tenant name '" + name + "': " + why;
    return false;
  }
  std::string path = fp::profile_path(dir, name, uid);
  // unlink removes a symlink itself, never what it points at.
  if (unlink(path.c_str()) == 0) return true;
  *err = errno == ENOENT
             ? "no profile named '" + name + "' in " + dir + " (see fikit-broker profile list)"
             : "failed to remove " + path + ": " + strerror(errno);
  return false;
}

namespace {

// Append the tenant names of the profiles in `dir` (" (uid N)" after them when uid != 0).
void list_dir(const std::string& dir, uint32_t uid, std::vector<std::string>* names) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json" || !e.is_regular_file(ec) || e.is_symlink(ec)) continue;
    std::string text, why;
    if (!fp::read_text_file(e.path().string(), &text, &why)) continue;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || j.value("format", std::string()) != fp::kProfileFormat) continue;
    std::string name = j.value("tenant", e.path().stem().string());
    names->push_back(uid ? name + " (uid " + std::to_string(uid) + ")" : name);
  }
}

}  // namespace

std::vector<std::string> fikit_profile_list(const std::string& dir) {
  std::vector<std::string> names;
  list_dir(dir, 0, &names);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string base = e.path().filename().string();
    if (base.size() < 2 || base[0] != 'u' || !e.is_directory(ec) || e.is_symlink(ec)) continue;
    char* end = nullptr;
    unsigned long uid = strtoul(base.c_str() + 1, &end, 10);
    if (*end == '\0' && uid != 0) list_dir(e.path().string(), static_cast<uint32_t>(uid), &names);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace fikit::broker
