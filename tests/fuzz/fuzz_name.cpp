// Fuzz target: tenant names (include/fikit/tenant_name.h). Invariants: whatever the bytes,
// tenant_name__sanitize makes a name tenant_name__check accepts, and leaves a valid name as it
// is; a name the check accepts goes through a JSON encoder without throwing.
#include <fikit/tenant_name.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

using namespace fikit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // As it arrives in a RegisterRequest: kNameLen bytes, maybe without a NUL.
  char fixed[kNameLen] = {};
  memcpy(fixed, data, size < kNameLen ? size : kNameLen);
  size_t at = 0;
  if (!tenant_name__check(fixed, kNameLen, &at)) {
    (void)nlohmann::json(std::string(fixed)).dump();
    char again[kNameLen];
    tenant_name__sanitize(again, sizeof(again), fixed);
    if (strcmp(again, fixed) != 0) abort();
  }
  // As a program name: any length, NUL-terminated.
  std::string any(reinterpret_cast<const char*>(data), size);
  char out[kNameLen];
  size_t n = tenant_name__sanitize(out, sizeof(out), any.c_str());
  if (n != strlen(out) || tenant_name__check(out, sizeof(out), &at)) abort();
  (void)nlohmann::json(std::string(out)).dump();
  return 0;
}
