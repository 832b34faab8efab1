// Small helpers shared by the client, the broker and the tests: clock, futex, kernel keys, priority
// names. Everything here is allocation-free and noexcept (the client's hot path uses it).
#pragma once

#include <fikit/abi.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace fikit {

// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call).
inline uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Wait while *word == expected, at most timeout_ns (0: forever). Shared futex: the word may be in
// shm. Return 0 on wake-up, -ETIMEDOUT, -EAGAIN (value already changed) or -EINTR.
inline int futex_wait(std::atomic<uint32_t>* word, uint32_t expected,
                      uint64_t timeout_ns) noexcept {
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull),
              static_cast<long>(timeout_ns % 1000000000ull)};
  long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected,
                   timeout_ns ? &ts : nullptr, nullptr, 0);
  return r == 0 ? 0 : -errno;
}

// Wake up to `count` waiters on *word. Return the number woken or -errno.
inline int futex_wake(std::atomic<uint32_t>* word, int count) noexcept {
  long r =
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
  return r >= 0 ? static_cast<int>(r) : -errno;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// 64-bit FNV-1a of a NUL-terminated string.
inline uint64_t hash_name(const char* s) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ull;
  return h;
}

// splitmix64 finaliser: spreads the bits of a combined value.
inline uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

struct Dim3 {
  uint32_t x, y, z;
};

// Kernel key: the kernel's name hash with its grid and block dimensions. Never 0 (0 means "no
// key").
inline uint64_t kernel_key(uint64_t name_hash, Dim3 grid, Dim3 block) noexcept {
  uint64_t k = mix64(name_hash ^ mix64((uint64_t{grid.x} << 32) | grid.y));
  k = mix64(k ^ ((uint64_t{grid.z} << 42) ^ (uint64_t{block.x} << 21) ^ block.y ^
                 (uint64_t{block.z} << 53)));
  return k ? k : 1;
}

// Key of a graph launch: graphs are keys of their own, named by their executable graph handle.
inline uint64_t graph_key(uint64_t graph_exec_handle) noexcept {
  uint64_t k = mix64(graph_exec_handle ^ 0x6772617068ull /* "graph" */);
  return k ? k : 1;
}

// Parse a priority: "high", "normal", "low" or a level 0..kPriorityLevels-1. Return the level or
// -EINVAL.
inline int priority_parse(const char* s) noexcept {
  if (!s || !*s) return -EINVAL;
  if (!strcmp(s, "high")) return static_cast<int>(kPriorityHigh);
  if (!strcmp(s, "normal")) return static_cast<int>(kPriorityNormal);
  if (!strcmp(s, "low")) return static_cast<int>(kPriorityLow);
  if (s[0] >= '0' && s[0] <= '9' && s[1] == '\0' &&
      static_cast<uint32_t>(s[0] - '0') < kPriorityLevels)
    return s[0] - '0';
  return -EINVAL;
}

// Name of a priority level for display: "high", "normal", "low" or "level N".
inline const char* priority_name(uint32_t level) noexcept {
  static const char* const kNames[kPriorityLevels] = {"high",    "normal",  "low",     "level 3",
                                                      "level 4", "level 5", "level 6", "level 7"};
  return level < kPriorityLevels ? kNames[level] : "invalid";
}

}  // namespace fikit
