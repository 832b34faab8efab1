// Per-tenant kernel statistics: the least-recently-used cap on keys.
#include <gtest/gtest.h>

#include "policy/fikit/kernel_stats.h"

namespace fikit::broker::fikit_policy {
namespace {

TEST(FikitKernelStats, TouchCreatesOnceAndCounts) {
  KernelTable t(4, 256);
  t.touch(7).seen++;
  t.touch(7).seen++;
  ASSERT_NE(t.find(7), nullptr);
  EXPECT_EQ(t.find(7)->seen, 2u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find(8), nullptr);
}

TEST(FikitKernelStats, CapDropsLeastRecentlyUsed) {
  KernelTable t(3, 256);
  t.touch(1);
  t.touch(2);
  t.touch(3);
  t.touch(1);  // 2 is now the least recently used
  t.find(2);   // find does not refresh recency
  t.touch(4);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.find(2), nullptr);
  EXPECT_NE(t.find(1), nullptr);
  EXPECT_NE(t.find(3), nullptr);
  EXPECT_NE(t.find(4), nullptr);
  std::vector<uint64_t> order;
  for (const KeyStats& k : t.by_recency()) order.push_back(k.key);
  EXPECT_EQ(order, (std::vector<uint64_t>{4, 1, 3}));
}

TEST(FikitKernelStats, GapHistogramIsCreatedOnDemand) {
  KernelTable t(2, 256);
  KeyStats& k = t.touch(5);
  EXPECT_FALSE(k.gaps);
  k.gaps_mut().add(1000);
  ASSERT_TRUE(k.gaps);
  EXPECT_EQ(k.gaps->total(), 1u);
  EXPECT_EQ(k.gaps->window(), 256u);
}

}  // namespace
}  // namespace fikit::broker::fikit_policy
