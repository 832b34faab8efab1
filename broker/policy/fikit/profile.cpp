// Profile serialisation (nlohmann/json) and files.
#include "policy/fikit/profile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/safe_fs.h"
#include "policy/fikit/key_names.h"

namespace fikit::broker::fikit_policy {

using nlohmann::json;

namespace {

json hist_to_json(const LogHistogram& h) {
  json a = json::array();
  for (const auto& [b, c] : h.counts()) a.push_back({b, c});
  return a;
}

// Fill *h from [[bucket, count], ...]. Throws std::runtime_error on a bad entry.
void hist_from_json(const json& a, LogHistogram* h, const char* what) {
  std::vector<std::pair<uint32_t, uint32_t>> counts;
  for (const json& e : a.get_ref<const json::array_t&>())
    counts.emplace_back(e.at(0).get<uint32_t>(), e.at(1).get<uint32_t>());
  if (!h->set_counts(counts))
    throw std::runtime_error(std::string("bad bucket list in ") + what +
                             " (index out of range, zero or repeated)");
}

std::string key_hex(uint64_t key) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, key);
  return buf;
}

uint64_t key_parse(const std::string& s) {
  size_t used = 0;
  uint64_t k = std::stoull(s, &used, 16);
  if (used != s.size() || k == 0) throw std::runtime_error("bad kernel key '" + s + "'");
  return k;
}

json key_to_json(const KeyStats& ks) {
  json k = {{"key", key_hex(ks.key)},
            {"seen", ks.seen},
            {"duration_samples", ks.duration_samples},
            {"gap_samples", ks.gap_samples},
            {"duration", hist_to_json(ks.duration)},
            {"pred_hits", ks.pred_hits},
            {"pred_misses", ks.pred_misses},
            {"fill_misses", ks.fill_misses},
            {"pred_sum_ns", ks.pred_sum_ns},
            {"actual_sum_ns", ks.actual_sum_ns},
            {"factor", ks.factor}};
  if (ks.gaps) k["gap"] = hist_to_json(*ks.gaps);
  return k;
}

void key_from_json(const json& k, KeyStats* ks) {
  ks->seen = k.at("seen").get<uint64_t>();
  ks->duration_samples = k.at("duration_samples").get<uint64_t>();
  ks->gap_samples = k.at("gap_samples").get<uint64_t>();
  hist_from_json(k.at("duration"), &ks->duration, "duration");
  if (k.contains("gap")) hist_from_json(k.at("gap"), &ks->gaps_mut(), "gap");
  ks->pred_hits = k.at("pred_hits").get<uint64_t>();
  ks->pred_misses = k.at("pred_misses").get<uint64_t>();
  ks->fill_misses = k.at("fill_misses").get<uint64_t>();
  ks->pred_sum_ns = k.value("pred_sum_ns", uint64_t{0});
  ks->actual_sum_ns = k.value("actual_sum_ns", uint64_t{0});
  double f = k.at("factor").get<double>();
  if (!(f > 0 && f <= 1)) throw std::runtime_error("factor out of range (0, 1]");
  ks->factor = f;
}

void check_header(const json& j, bool any_name, const std::string& name) {
  if (!j.is_object() || j.value("format", std::string()) != kProfileFormat)
    throw std::runtime_error(std::string("not a fikit profile (no \"format\": \"") +
                             kProfileFormat + "\")");
  int version = j.at("version").get<int>();
  if (version != kProfileVersion)
    throw std::runtime_error("profile version " + std::to_string(version) +
                             ", this broker reads version " + std::to_string(kProfileVersion) +
                             ": re-export it with a matching broker or delete it");
  const json& g = j.at("histogram");
  if (g.at("sub_bits").get<uint32_t>() != LogHistogram::kSubBits ||
      g.at("min_shift").get<uint32_t>() != LogHistogram::kMinShift ||
      g.at("buckets").get<uint32_t>() != LogHistogram::kBuckets)
    throw std::runtime_error("histogram geometry differs from this broker's");
  std::string tenant = j.at("tenant").get<std::string>();
  if (!any_name && tenant != name)
    throw std::runtime_error("profile of tenant '" + tenant + "', not '" + name + "'");
}

}  // namespace

std::string profile_path(const std::string& dir, const std::string& name, uint32_t uid) {
  std::string file = name.empty() ? "%" : "";
  for (size_t i = 0; i < name.size(); i++) {
    auto ch = static_cast<unsigned char>(name[i]);
    if (isalnum(ch) || ch == '_' || ch == '-' || (ch == '.' && i > 0)) {
      file += static_cast<char>(ch);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", ch);
      file += hex;
    }
  }
  std::filesystem::path d(dir);
  if (uid != 0) d /= "u" + std::to_string(uid);
  return (d / (file + ".json")).string();
}

std::string profile_name_problem(const std::string& name) {
  if (name.empty() || name.size() > 31) return "a tenant name is 1 to 31 bytes";
  if (name == "." || name == "..") return "'.' and '..' name no tenant";
  for (size_t i = 0; i < name.size();) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c == '/') return "a tenant name has no '/'";
    if (c < 0x20 || c == 0x7f) return "a tenant name has no control characters";
    // UTF-8: the length from the lead byte, then continuation bytes; no overlong 2-byte forms.
    size_t len = c < 0x80                  ? 1
                 : (c >= 0xc2 && c < 0xe0) ? 2
                 : (c >= 0xe0 && c < 0xf0) ? 3
                 : (c >= 0xf0 && c < 0xf5) ? 4
                                           : 0;
    if (len == 0 || i + len > name.size()) return "a tenant name is valid UTF-8";
    for (size_t k = 1; k < len; k++)
      if ((static_cast<unsigned char>(name[i + k]) & 0xc0) != 0x80)
        return "a tenant name is valid UTF-8";
    i += len;
  }
  return "";
}

std::string profile_to_json(const TenantData& td) {
  json keys = json::array();
  for (const KeyStats& ks : td.keys.by_recency()) {
    keys.push_back(key_to_json(ks));
    if (auto n = td.key_names.find(ks.key); n != td.key_names.end())
      keys.back()["name"] = n->second;
  }
  json j = {{"format", kProfileFormat},
            {"version", kProfileVersion},
            {"tenant", td.name},
            {"priority", td.priority},
            {"saved_unix_s", static_cast<int64_t>(std::time(nullptr))},
            {"histogram",
             {{"sub_bits", LogHistogram::kSubBits},
              {"min_shift", LogHistogram::kMinShift},
              {"buckets", LogHistogram::kBuckets}}},
            {"tenant_gaps", hist_to_json(td.all_gaps)},
            {"grant_delays", hist_to_json(td.delays)},
            {"keys", keys}};
  // Optional (older profiles have none): HP request latency with no LP work beside it.
  if (!td.alone.empty()) j["alone_latency"] = hist_to_json(td.alone);
  return j.dump(1) + "\n";
}

bool profile_from_json(const std::string& text, bool any_name, TenantData* td, std::string* err) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    *err = "not valid JSON (truncated or corrupt file)";
    return false;
  }
  KernelTable keys(td->keys.max_keys(), td->keys.window());
  LogHistogram gaps(td->all_gaps.window()), delays(td->delays.window()), alone(td->alone.window());
  std::map<uint64_t, std::string> names;
  size_t i = 0;
  bool in_keys = false;
  try {
    check_header(j, any_name, td->name);
    hist_from_json(j.at("tenant_gaps"), &gaps, "tenant_gaps");
    hist_from_json(j.at("grant_delays"), &delays, "grant_delays");
    if (j.contains("alone_latency")) hist_from_json(j.at("alone_latency"), &alone, "alone_latency");
    const json::array_t& arr = j.at("keys").get_ref<const json::array_t&>();
    // Saved most recent first: insert from the end so recency order is kept (and the cap drops
    // the least recently used when this broker keeps fewer keys).
    in_keys = true;
    for (i = arr.size(); i-- > 0;) {
      const json& k = arr[i];
      uint64_t key = key_parse(k.at("key").get<std::string>());
      if (keys.find(key)) throw std::runtime_error("kernel key listed twice");
      key_from_json(k, &keys.touch(key));
      if (k.contains("name")) {
        // A profile may have been imported: its names are as untrusted as the tenant's table.
        std::string name = k.at("name").get<std::string>();
        if (std::string why = key_name_problem(name); !why.empty())
          throw std::runtime_error("bad kernel name: " + why);
        names[key] = name;
      }
    }
  } catch (const std::exception& e) {
    *err = in_keys ? "key #" + std::to_string(i) + ": " + e.what() : std::string(e.what());
    return false;
  }
  td->keys.swap(keys);
  td->key_names = std::move(names);
  td->all_gaps = gaps;
  td->delays = delays;
  td->alone = alone;
  td->alone_from_profile = !alone.empty();
  return true;
}

bool read_text_file(const std::string& path, std::string* out, std::string* err) {
  // O_NOFOLLOW: a symlink planted in the profile directory is not read through.
  if (int e = read_file_nofollow(path, out); e < 0) {
    *err = "failed to read " + path + ": " + std::strerror(-e);
    return false;
  }
  return true;
}

bool write_text_file_atomic(const std::string& path, const std::string& text, std::string* err) {
  std::string dir = dir_of(path);
  Result<DirFd> fd = open_owned_dir(dir, {.create = true, .mode = 0700, .hint = ""});
  if (!fd.ok()) {
    *err = "failed to write " + path + ": " + fd.status().message();
    return false;
  }
  // Readable by root and the broker's user only: a profile tells what a tenant runs.
  return write_file_atomic(*fd, dir, base_of(path), text, 0600, err);
}

bool profile_save(const TenantData& td, const std::string& dir, std::string* err) {
  if (std::string why = profile_name_problem(td.name); !why.empty()) {
    *err = "no profile for tenant name '" + td.name + "': " + why;
    return false;
  }
  return write_text_file_atomic(profile_path(dir, td.name, td.uid), profile_to_json(td), err);
}

bool profile_load(TenantData* td, const std::string& dir, std::string* err) {
  err->clear();
  if (!profile_name_problem(td->name).empty()) return false;  // none can have been saved
  std::string path = profile_path(dir, td->name, td->uid);
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 && errno == ENOENT) return false;
  std::string text, why;
  if (!read_text_file(path, &text, &why) || !profile_from_json(text, false, td, &why)) {
    *err = "failed to load profile " + path + ": " + why;
    return false;
  }
  return true;
}

}  // namespace fikit::broker::fikit_policy
