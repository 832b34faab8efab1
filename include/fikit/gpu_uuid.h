// A GPU's UUID as the NVIDIA driver (/proc/driver/nvidia/gpus) and nvidia-smi print it: "GPU-" and
// its 16 bytes as 8-4-4-4-12 hex digits. One spelling for the broker, fikit-calibrate and the
// simulated driver, so that the UUIDs they compare agree.
#pragma once

#include <cstdio>
#include <string>

namespace fikit {

inline std::string gpu_uuid_text(const void* uuid16) {
  const auto* b = static_cast<const unsigned char*>(uuid16);
  char buf[48];
  snprintf(buf, sizeof(buf),
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return buf;
}

}  // namespace fikit
