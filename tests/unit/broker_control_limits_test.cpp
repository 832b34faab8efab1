// The control thread's limits in isolation: the exception guard, the one-line-a-second counter,
// the accept back-off and the tenant-quota refusals (broker/control/{guard,rate_counter,fd_limit,
// quota}.h). The real broker is exercised by tests/integration/hardening_*_test.cpp.
#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "control/fd_limit.h"
#include "control/guard.h"
#include "control/quota.h"
#include "control/rate_counter.h"

namespace fikit::broker {
namespace {

TEST(Guard, CatchesWhatAHandlerThrows) {
  Guard g;
  bool ran = false;
  EXPECT_TRUE(g.run("message", 1, [&] { ran = true; }));
  EXPECT_TRUE(ran);
  EXPECT_FALSE(g.run("message", 1, [] { throw std::runtime_error("invalid UTF-8 byte"); }));
  EXPECT_FALSE(g.run("exit", 2, [] { throw 42; }));
  EXPECT_EQ(g.caught(), 2u);
}

TEST(RateCounter, OneLineASecondWithTheCount) {
  RateCounter c;
  const uint64_t s = 1'000'000'000;
  EXPECT_EQ(c.count(5 * s), 1u);  // the first is logged at once
  EXPECT_EQ(c.count(5 * s + 1), 0u);
  EXPECT_EQ(c.count(5 * s + s / 2), 0u);
  EXPECT_EQ(c.count(6 * s), 3u);  // the two held back and this one
  EXPECT_EQ(c.total(), 4u);
}

TEST(AcceptBackoff, DoublesToOneSecondAndResets) {
  AcceptBackoff b;
  const uint64_t ms = 1'000'000;
  EXPECT_EQ(b.on_failure(), 10 * ms);
  EXPECT_EQ(b.on_failure(), 20 * ms);
  for (int i = 0; i < 10; i++) b.on_failure();
  EXPECT_EQ(b.on_failure(), 1000 * ms);
  b.on_success();
  EXPECT_EQ(b.on_failure(), 10 * ms);
  EXPECT_TRUE(accept_error_is_exhaustion(EMFILE));
  EXPECT_TRUE(accept_error_is_exhaustion(ENFILE));
  EXPECT_FALSE(accept_error_is_exhaustion(ECONNABORTED));
}

TEST(FdLimit, RaisesTheSoftLimitToTheHardOne) {
  long limit = raise_fd_limit();
  ASSERT_GT(limit, 0);
  rlimit r{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
  EXPECT_EQ(r.rlim_cur, r.rlim_max);
  EXPECT_EQ(static_cast<rlim_t>(limit), r.rlim_cur);
}

TEST(Quota, RefusalsNameTheLimit) {
  Quotas q;
  EXPECT_TRUE(check_tenant_quota(q, 1000, q.tenants_per_uid - 1, 10).ok());
  Status s = check_tenant_quota(q, 1000, q.tenants_per_uid, 10);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("uid 1000 already has 256 tenants"), std::string::npos) << s.message();
  s = check_tenant_quota(q, 0, 0, q.tenants_total);
  EXPECT_NE(s.message().find("already serves 1024 tenants"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fikit::broker
