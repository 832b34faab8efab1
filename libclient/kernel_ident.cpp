#include "kernel_ident.h"

#include <fikit/util.h>

#include <cstring>

#include "hook_table.h"

namespace fikit::client {
namespace {

constinit KernelNameCache g_kernel_names;

void copy_prefix(char* dst, const char* src) noexcept {
  size_t n = strnlen(src, kKeyNameLen - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

// Write "<prefix>0x<hex>" into out (cap bytes).
void hex_name(const char* prefix, uint64_t v, char* out, size_t cap) noexcept {
  static const char kDigits[] = "0123456789abcdef";
  char buf[kKeyNameLen];
  size_t n = 0;
  for (const char* p = prefix; *p && n + 1 < sizeof(buf); p++) buf[n++] = *p;
  buf[n++] = '0';
  buf[n++] = 'x';
  int shift = 60;
  while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0 && n + 1 < sizeof(buf); shift -= 4) buf[n++] = kDigits[(v >> shift) & 0xf];
  buf[n] = '\0';
  size_t len = n < cap - 1 ? n : cap - 1;
  memcpy(out, buf, len);
  out[len] = '\0';
}

}  // namespace

const char* resolve_name_with_driver(CUfunction f, char* scratch, size_t cap) noexcept {
  const DriverOps& d = driver();
  const char* name = nullptr;
  if (d.func_get_name && d.func_get_name(&name, f) == CUDA_SUCCESS && name && *name) return name;
  name = nullptr;
  if (d.kernel_get_name &&
      d.kernel_get_name(&name, reinterpret_cast<CUkernel>(f)) == CUDA_SUCCESS && name && *name)
    return name;
  hex_name("func@", reinterpret_cast<uintptr_t>(f), scratch, cap);
  return scratch;
}

KernelName KernelNameCache::lookup(CUfunction f, NameResolver resolve, char* scratch) noexcept {
  uintptr_t key = reinterpret_cast<uintptr_t>(f);
  uint32_t home = static_cast<uint32_t>(mix64(key)) & (kEntries - 1);
  Entry* free_entry = nullptr;
  for (uint32_t i = 0; i < kMaxProbes; i++) {
    Entry& e = entries_[(home + i) & (kEntries - 1)];
    uintptr_t cur = e.fn.load(std::memory_order_acquire);
    if (cur == key) {
      // Acquire pairs with the claimer's release store of hash: the name is written.
      uint64_t h = e.hash.load(std::memory_order_acquire);
      if (h) return {h, e.name};
      break;  // claimed but not written yet: resolve without caching
    }
    if (cur == 0) {
      free_entry = &e;
      break;
    }
  }
  const char* name = resolve(f, scratch, kKeyNameLen);
  uint64_t h = hash_name(name);
  if (!h) h = 1;  // 0 marks "not written"
  if (free_entry) {
    uintptr_t expected = 0;
    if (free_entry->fn.compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
      copy_prefix(free_entry->name, name);
      free_entry->hash.store(h, std::memory_order_release);
      return {h, free_entry->name};
    }
  }
  if (name != scratch) {
    copy_prefix(scratch, name);  // the driver's string lives only as long as its module
  }
  return {h, scratch};
}

void KernelNameCache::reset() noexcept {
  for (auto& e : entries_) {
    e.fn.store(0, std::memory_order_relaxed);
    e.hash.store(0, std::memory_order_relaxed);
  }
}

KernelNameCache& kernel_names() noexcept { return g_kernel_names; }

bool PublishedKeys::insert(uint64_t key) noexcept {
  uint32_t home = static_cast<uint32_t>(mix64(key)) & (kEntries - 1);
  for (uint32_t i = 0; i < kEntries; i++) {
    std::atomic<uint64_t>& slot = keys_[(home + i) & (kEntries - 1)];
    uint64_t cur = slot.load(std::memory_order_relaxed);
    if (cur == key) return false;
    if (cur != 0) continue;
    if (slot.compare_exchange_strong(cur, key, std::memory_order_relaxed)) return true;
    if (cur == key) return false;
  }
  return false;  // full: stop publishing
}

void publish_key_name(KeyNameTable* table, PublishedKeys* published, uint64_t key,
                      const char* name) noexcept {
  // Cheap exit once the segment's table is full.
  if (table->claimed.load(std::memory_order_relaxed) >= kKeyNames) return;
  if (!published->insert(key)) return;
  uint32_t idx = table->claimed.fetch_add(1, std::memory_order_relaxed);
  if (idx >= kKeyNames) return;
  KeyName& e = table->entries[idx];
  copy_prefix(e.name, name);
  // Release pairs with the broker's acquire load of kernel_key: the name is written first.
  e.kernel_key.store(key, std::memory_order_release);
}

void graph_name(uint64_t exec_handle, char* out) noexcept {
  hex_name("graph@", exec_handle, out, kKeyNameLen);
}

}  // namespace fikit::client
