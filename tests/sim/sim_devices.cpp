// The simulated node's GPUs and CUDA_VISIBLE_DEVICES (sim_devices.h).
#include "sim/sim_devices.h"

#include <fikit/gpu_uuid.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fikit::sim {
namespace {

uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The physical index `entry` names, or -1.
int32_t entry_index(const std::vector<DeviceIdentity>& node, const std::string& entry) {
  if (entry.empty()) return -1;
  if (entry.compare(0, 4, "GPU-") == 0 || entry.compare(0, 4, "MIG-") == 0) {
    int32_t found = -1;
    for (const DeviceIdentity& d : node)
      if (d.uuid_text.compare(0, entry.size(), entry) == 0) {
        if (found >= 0) return -1;  // an ambiguous prefix names no GPU
        found = static_cast<int32_t>(d.index);
      }
    return found;
  }
  char* end = nullptr;
  long v = strtol(entry.c_str(), &end, 10);
  if (*end || v < 0 || v >= static_cast<long>(node.size())) return -1;
  return static_cast<int32_t>(v);
}

}  // namespace

std::vector<DeviceIdentity> node_devices(const Config& cfg) {
  std::vector<DeviceIdentity> out;
  for (uint32_t k = 0; k < cfg.devices; k++) {
    DeviceIdentity d;
    d.index = k;
    d.cfg = cfg;
    if (k > 0) d.cfg.shm_name = cfg.shm_name + "-" + std::to_string(k);
    d.cfg.sms = cfg.device_sms.empty()
                    ? cfg.sms
                    : cfg.device_sms[std::min<size_t>(k, cfg.device_sms.size() - 1)];
    uint64_t a = fnv1a(d.cfg.shm_name, 0xcbf29ce484222325ull);
    uint64_t b = fnv1a(d.cfg.shm_name, a ^ 0x5bd1e9955bd1e995ull);
    memcpy(d.uuid.bytes, &a, 8);
    memcpy(d.uuid.bytes + 8, &b, 8);
    d.uuid_text = gpu_uuid_text(d.uuid.bytes);
    d.name = cfg.devices == 1 ? "fikit simulated GPU" : "fikit simulated GPU " + std::to_string(k);
    out.push_back(d);
  }
  return out;
}

std::vector<uint32_t> visible_devices(const std::vector<DeviceIdentity>& node, const char* env) {
  std::vector<uint32_t> out;
  if (!env) {
    for (const DeviceIdentity& d : node) out.push_back(d.index);
    return out;
  }
  std::string list = env;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    int32_t i = entry_index(node, trim(list.substr(start, comma - start)));
    bool seen = false;
    for (uint32_t v : out) seen |= static_cast<int32_t>(v) == i;
    if (i < 0 || seen) break;
    out.push_back(static_cast<uint32_t>(i));
    start = comma + 1;
  }
  return out;
}

}  // namespace fikit::sim
