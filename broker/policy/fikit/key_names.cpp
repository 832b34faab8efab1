#include "policy/fikit/key_names.h"

#include <cxxabi.h>
#include <fikit/key_names.h>
#include <fikit/tenant_name.h>

#include <cstdlib>
#include <cstring>
#include <unordered_set>

namespace fikit::broker::fikit_policy {

void collect_key_names(TenantData& td, const KeyNameTable* table) {
  std::unordered_set<uint64_t> held;
  for (const KeyStats& k : td.keys.by_recency()) held.insert(k.key);
  for (auto it = td.key_names.begin(); it != td.key_names.end();)
    it = held.count(it->first) ? std::next(it) : td.key_names.erase(it);
  if (!table) return;
  const uint32_t n = key_names__count(table);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t key = 0;
    char name[kKeyNameLen];
    if (!key_name__read(table, i, &key, name) || !held.count(key) || name[0] == '\0') continue;
    td.key_names[key] = name;
  }
}

std::string key_name_problem(const std::string& name) {
  if (name.empty() || name.size() >= kKeyNameLen)
    return "a kernel name is 1 to " + std::to_string(kKeyNameLen - 1) + " bytes";
  if (std::memchr(name.data(), '\0', name.size())) return "a kernel name has no NUL byte";
  size_t at = 0;
  if (const char* why = tenant_name__check(name.c_str(), name.size() + 1, &at))
    return std::string("the kernel name ") + why;
  return "";
}

std::string key_name_display(const std::string& name, size_t width) {
  std::string shown = name;
  bool cut = name.size() >= kKeyNameLen - 1;  // the client may have cut it there
  if (name.starts_with("_Z")) {
    int status = -1;
    // A mangled name cut by the client does not demangle (status != 0): it is shown as it is.
    char* d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
    if (status == 0 && d) {
      shown = d;
      cut = false;
    }
    std::free(d);
  }
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (width == 0) return "";
  if (shown.size() > width || (cut && shown.size() == width)) {
    size_t end = width - 1;
    while (end > 0 && (static_cast<unsigned char>(shown[end]) & 0xc0) == 0x80) end--;
    return shown.substr(0, end) + "~";
  }
  return cut ? shown + "~" : shown;
}

}  // namespace fikit::broker::fikit_policy
