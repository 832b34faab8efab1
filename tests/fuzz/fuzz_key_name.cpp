// Fuzz target: a tenant's key-name table as the broker reads it (include/fikit/key_names.h). The
// input is the table's memory, as a tenant may have written it. Invariants: every entry the
// reader yields has a non-zero key and a valid name that a JSON encoder takes without throwing.
#include <fikit/key_names.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

using namespace fikit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  alignas(KeyNameTable) static unsigned char mem[sizeof(KeyNameTable)];
  memset(mem, 0, sizeof(mem));
  memcpy(mem, data, size < sizeof(mem) ? size : sizeof(mem));
  const auto* table = reinterpret_cast<const KeyNameTable*>(mem);
  uint32_t n = key_names__count(table);
  if (n > kKeyNames) abort();
  for (uint32_t i = 0; i <= n && i < kKeyNames + 1; i++) {
    uint64_t key = 0;
    char name[kKeyNameLen];
    if (!key_name__read(table, i, &key, name)) continue;
    size_t at = 0;
    if (key == 0 || tenant_name__check(name, kKeyNameLen, &at)) abort();
    (void)nlohmann::json(std::string(name)).dump();
  }
  return 0;
}
