// Kernel identity: key stability, the CUfunction name cache (first sight resolves, later lookups do
// not), concurrent lookups, and publishing each key's name once into the segment.
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernel_ident.h"

namespace fikit::client {
namespace {

std::atomic<int> t_resolves{0};

// Names kernels after their handle: "kernel_<handle>".
const char* t_resolve(CUfunction f, char* scratch, size_t cap) {
  t_resolves.fetch_add(1);
  snprintf(scratch, cap, "kernel_%lx", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(f)));
  return scratch;
}

const std::string t_long_name = "void at::native::elementwise_kernel<128, 4, very_long_template>";
const char* t_resolve_long(CUfunction, char*, size_t) {
  t_resolves.fetch_add(1);
  return t_long_name.c_str();
}

CUfunction t_fn(uintptr_t v) { return reinterpret_cast<CUfunction>(v); }

class KernelIdentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_names().reset();
    t_resolves = 0;
  }
};

TEST(KernelKey, StableAndSensitiveToEveryDimension) {
  uint64_t h = hash_name("gemm");
  Dim3 g{4, 2, 1}, b{128, 1, 1};
  uint64_t k = kernel_key(h, g, b);
  EXPECT_EQ(k, kernel_key(hash_name("gemm"), g, b));
  EXPECT_NE(k, 0u);
  EXPECT_NE(k, kernel_key(hash_name("gemv"), g, b));
  EXPECT_NE(k, kernel_key(h, {5, 2, 1}, b));
  EXPECT_NE(k, kernel_key(h, {4, 3, 1}, b));
  EXPECT_NE(k, kernel_key(h, {4, 2, 2}, b));
  EXPECT_NE(k, kernel_key(h, g, {64, 1, 1}));
  EXPECT_NE(k, kernel_key(h, g, {128, 2, 1}));
  EXPECT_NE(k, kernel_key(h, g, {128, 1, 2}));
  EXPECT_NE(graph_key(0x1000), graph_key(0x2000));
  EXPECT_EQ(graph_key(0x1000), graph_key(0x1000));
}

TEST_F(KernelIdentTest, FirstSightResolvesLaterLookupsHitTheCache) {
  char scratch[kKeyNameLen];
  KernelName a = kernel_names().lookup(t_fn(0x1000), t_resolve, scratch);
  EXPECT_STREQ(a.name, "kernel_1000");
  EXPECT_EQ(a.hash, hash_name("kernel_1000"));
  EXPECT_EQ(t_resolves.load(), 1);
  for (int i = 0; i < 10; i++) {
    KernelName again = kernel_names().lookup(t_fn(0x1000), t_resolve, scratch);
    EXPECT_EQ(again.hash, a.hash);
    EXPECT_STREQ(again.name, "kernel_1000");
  }
  EXPECT_EQ(t_resolves.load(), 1);
  KernelName b = kernel_names().lookup(t_fn(0x2000), t_resolve, scratch);
  EXPECT_NE(b.hash, a.hash);
  EXPECT_EQ(t_resolves.load(), 2);
}

TEST_F(KernelIdentTest, LongNamesHashInFullAndKeepAPrefix) {
  char scratch[kKeyNameLen];
  KernelName n = kernel_names().lookup(t_fn(0x3000), t_resolve_long, scratch);
  EXPECT_EQ(n.hash, hash_name(t_long_name.c_str()));
  EXPECT_EQ(strlen(n.name), kKeyNameLen - 1);
  EXPECT_EQ(std::string(n.name), t_long_name.substr(0, kKeyNameLen - 1));
}

TEST_F(KernelIdentTest, ManyFunctionsStillResolveWhenTheCacheIsFull) {
  char scratch[kKeyNameLen];
  const uintptr_t n = KernelNameCache::kEntries + 500;
  for (uintptr_t i = 1; i <= n; i++) {
    KernelName k = kernel_names().lookup(t_fn(i * 16), t_resolve, scratch);
    char want[64];
    snprintf(want, sizeof(want), "kernel_%lx", static_cast<unsigned long>(i * 16));
    ASSERT_EQ(k.hash, hash_name(want)) << i;
  }
  EXPECT_GE(t_resolves.load(), static_cast<int>(n));
}

TEST_F(KernelIdentTest, ConcurrentLookupsAgree) {
  constexpr int kThreads = 4;
  constexpr uintptr_t kFns = 200;
  std::vector<std::vector<uint64_t>> seen(kThreads, std::vector<uint64_t>(kFns));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([t, &seen] {
      char scratch[kKeyNameLen];
      for (int round = 0; round < 20; round++)
        for (uintptr_t i = 0; i < kFns; i++) {
          uintptr_t f = (t % 2 ? kFns - 1 - i : i) + 1;
          seen[t][f - 1] = kernel_names().lookup(t_fn(f * 64), t_resolve, scratch).hash;
        }
    });
  }
  for (auto& th : threads) th.join();
  for (uintptr_t i = 0; i < kFns; i++) {
    char want[64];
    snprintf(want, sizeof(want), "kernel_%lx", static_cast<unsigned long>((i + 1) * 64));
    for (int t = 0; t < kThreads; t++) EXPECT_EQ(seen[t][i], hash_name(want));
  }
  // Each function is resolved at most once per thread that raced on its first sight.
  EXPECT_LE(t_resolves.load(), static_cast<int>(kFns * kThreads));
  EXPECT_GE(t_resolves.load(), static_cast<int>(kFns));
}

struct t_Names {
  KeyNameTable* table;
  PublishedKeys* published;
  t_Names() {
    void* p = mmap(nullptr, sizeof(KeyNameTable) + sizeof(PublishedKeys), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    table = new (p) KeyNameTable();
    published = new (static_cast<char*>(p) + sizeof(KeyNameTable)) PublishedKeys();
  }
  ~t_Names() { munmap(table, sizeof(KeyNameTable) + sizeof(PublishedKeys)); }
};

TEST(PublishKeyName, EachKeyOnceThenStopsWhenFull) {
  t_Names n;
  publish_key_name(n.table, n.published, 11, "alpha");
  publish_key_name(n.table, n.published, 11, "alpha");
  publish_key_name(n.table, n.published, 22, "beta");
  ASSERT_EQ(n.table->claimed.load(), 2u);
  EXPECT_EQ(n.table->entries[0].kernel_key.load(), 11u);
  EXPECT_STREQ(n.table->entries[0].name, "alpha");
  EXPECT_EQ(n.table->entries[1].kernel_key.load(), 22u);
  EXPECT_STREQ(n.table->entries[1].name, "beta");
  for (uint64_t k = 100; k < 100 + 2 * kKeyNames; k++)
    publish_key_name(n.table, n.published, k, "x");
  EXPECT_EQ(n.table->entries[kKeyNames - 1].kernel_key.load(), 100u + kKeyNames - 3);
  EXPECT_LE(n.table->claimed.load(), kKeyNames + 1);  // stops claiming once full
}

TEST(GraphName, HexOfTheHandle) {
  char out[kKeyNameLen];
  graph_name(0xabc123, out);
  EXPECT_STREQ(out, "graph@0xabc123");
  graph_name(0, out);
  EXPECT_STREQ(out, "graph@0x0");
}

}  // namespace
}  // namespace fikit::client
