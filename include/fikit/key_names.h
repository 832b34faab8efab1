// Reading a tenant's key-name table (abi.h KeyNameTable) on the broker side. The table lies in
// memory the tenant writes at any time, so a reader copies an entry out once and treats the copy
// as untrusted bytes: `claimed` may be any value, a name may lack its NUL or be rewritten while it
// is copied, and its bytes may be anything. key_name__read yields a bounded index, a non-zero key
// and a name that is printable UTF-8 (tenant_name.h) or nothing. Allocation-free and noexcept.
#pragma once

#include <fikit/abi.h>
#include <fikit/tenant_name.h>

#include <atomic>
#include <cstdint>

namespace fikit {

// Entries a reader may look at: `claimed` counts claims, which may exceed the table.
inline uint32_t key_names__count(const KeyNameTable* t) noexcept {
  uint32_t n = t->claimed.load(std::memory_order_acquire);
  return n < kKeyNames ? n : kKeyNames;
}

// Copy entry i (< kKeyNames) out of the table. Return false if it is not published yet (key 0) or
// i is out of range; else *key and `name` (kKeyNameLen bytes, a valid name) are set.
inline bool key_name__read(const KeyNameTable* t, uint32_t i, uint64_t* key,
                           char (&name)[kKeyNameLen]) noexcept {
  if (i >= kKeyNames) return false;
  const KeyName& e = t->entries[i];
  // Acquire: pairs with the client's release store of the key after it wrote the name.
  uint64_t k = e.kernel_key.load(std::memory_order_acquire);
  if (k == 0) return false;
  char raw[kKeyNameLen + 1];
  for (uint32_t j = 0; j < kKeyNameLen; j++)
    raw[j] = reinterpret_cast<const volatile char*>(e.name)[j];  // one read per byte
  raw[kKeyNameLen] = '\0';
  tenant_name__sanitize(name, kKeyNameLen, raw);
  *key = k;
  return true;
}

}  // namespace fikit
