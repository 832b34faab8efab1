// Fuzz target: a control message as the broker decodes it (check_header, decode_register in
// broker/control/admission.h). Invariants: nothing crashes; a refusal says why; an accepted
// request has a priority in range and a valid tenant name, which a JSON encoder takes without
// throwing (status and profiles put it there).
#include <fikit/tenant_name.h>

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "control/admission.h"

using namespace fikit;
using namespace fikit::broker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 512) return 0;  // control.cpp's kMaxMessage: longer ones are refused before decoding
  const char* msg = reinterpret_cast<const char*>(data);
  const int len = static_cast<int>(size);
  (void)check_header(msg, len);
  for (uid_t uid : {uid_t{0}, uid_t{1000}}) {
    Result<RegisterRequest> r = decode_register(msg, len, Peer{1, uid});
    if (!r.ok()) {
      if (r.status().message().empty()) abort();
      continue;
    }
    size_t at = 0;
    if (r->priority >= kPriorityLevels || tenant_name__check(r->name, kNameLen, &at)) abort();
    (void)nlohmann::json(std::string(r->name)).dump();
  }
  return 0;
}
