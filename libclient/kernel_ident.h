// Kernel identity: CUfunction -> name (cuFuncGetName, cached), key = kernel_key(hash_name(name),
// grid, block); graph launches use graph_key(exec handle). New keys' names are published once per
// session into the segment's KeyNameTable so that the broker can show and profile them by name.
//
// The cache is a fixed open-addressing table keyed by the CUfunction handle. A handle reused for
// another kernel after its module was unloaded keeps the old name (the driver gives no unload
// signal we hook).
#pragma once

#include <cuda.h>
#include <fikit/abi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fikit::client {

// Find a kernel's name. Return the driver's string or one written into `scratch` (`cap` bytes);
// never nullptr.
using NameResolver = const char* (*)(CUfunction f, char* scratch, size_t cap);

// The production resolver: cuFuncGetName, then cuKernelGetName (a CUkernel passed as CUfunction),
// else "func@0x<handle>".
const char* resolve_name_with_driver(CUfunction f, char* scratch, size_t cap) noexcept;

struct KernelName {
  uint64_t hash;     // hash_name of the full name
  const char* name;  // at least the first kKeyNameLen-1 bytes, NUL-terminated
};

class KernelNameCache {
 public:
  static constexpr uint32_t kEntries = 4096;
  static constexpr uint32_t kMaxProbes = 32;

  // Return f's name, calling `resolve` on first sight. `scratch` (kKeyNameLen bytes) backs the
  // name when the cache cannot hold it.
  KernelName lookup(CUfunction f, NameResolver resolve, char* scratch) noexcept;

  void reset() noexcept;

 private:
  struct Entry {
    std::atomic<uintptr_t> fn;   // claimed first; 0 while free
    std::atomic<uint64_t> hash;  // stored last (release); 0 while the claimer is still writing
    char name[kKeyNameLen];
  };
  Entry entries_[kEntries] = {};
};

// The process's cache.
KernelNameCache& kernel_names() noexcept;

// Per-session set of keys whose names were published (open addressing, never shrinks).
class PublishedKeys {
 public:
  static constexpr uint32_t kEntries = 2 * kKeyNames;

  // Return true if `key` was not in the set and is now (the caller publishes it).
  bool insert(uint64_t key) noexcept;

 private:
  std::atomic<uint64_t> keys_[kEntries] = {};
};

// Publish `name` for `key` into `table` unless it was published already or the table is full.
void publish_key_name(KeyNameTable* table, PublishedKeys* published, uint64_t key,
                      const char* name) noexcept;

// Write "graph@0x<handle>" into `out` (kKeyNameLen bytes).
void graph_name(uint64_t exec_handle, char* out) noexcept;

}  // namespace fikit::client
