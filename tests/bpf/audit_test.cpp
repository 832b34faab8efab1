// Audit mode: uprobes on a test library's "launch" functions count the launches of an audited
// process only. Root and BPF are required (exit 77 otherwise).
#include <string>
#include <vector>

#include "launch_auditor.h"
#include "observer.h"
#include "t_bpf.h"

namespace fikit::bpf {
namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new t::BpfEnvironment);
constexpr long kLaunches = 1000;

AuditConfig test_audit_config() {
  AuditConfig a;
  a.enabled = true;
  a.library = t::build_file("tests/libfikit_bpf_testlib.so");
  a.functions = {"fikit_test_launch", "fikit_test_launch_ex"};
  return a;
}

uint64_t launches_of(const std::vector<LaunchCount>& counts, const std::string& fn) {
  for (const LaunchCount& c : counts)
    if (c.function == fn) return c.count;
  return 0;
}

TEST(LaunchAudit, CountsLaunchesOfTheAuditedProcessOnly) {
  t::TestDevice dev;
  BpfConfig config;
  config.test_device = dev.id();
  config.audit = test_audit_config();
  Result<std::unique_ptr<BpfObserver>> opened = BpfObserver::open(config);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  BpfObserver& obs = *opened.value();

  t::Child audited({t::build_file("tests/fikit_bpf_test_child"), "launch", dev.path(),
                    std::to_string(kLaunches)});
  t::Child bystander({t::build_file("tests/fikit_bpf_test_child"), "launch", dev.path(),
                      std::to_string(kLaunches)});
  ASSERT_EQ(audited.read_line(), "ready");
  ASSERT_EQ(bystander.read_line(), "ready");
  Result<int> attached = obs.audit_process(audited.pid());
  ASSERT_TRUE(attached.ok()) << attached.status().message();
  EXPECT_EQ(attached.value(), 2);
  audited.go();
  bystander.go();
  ASSERT_EQ(audited.read_line(), "done");
  ASSERT_EQ(bystander.read_line(), "done");

  std::vector<ProcessUsage> snap;
  const ProcessUsage* u = nullptr;
  auto known = [&] {
    snap = obs.snapshot();
    u = t::find_usage(snap, audited.pid());
    return u && u->clients == 1;
  };
  ASSERT_TRUE(t::pump(obs, known));
  EXPECT_EQ(launches_of(u->launches, "fikit_test_launch"), uint64_t{kLaunches});
  EXPECT_EQ(launches_of(u->launches, "fikit_test_launch_ex"), uint64_t{kLaunches / 2});
  const ProcessUsage* other = t::find_usage(snap, bystander.pid());
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->launches.empty()) << "a process that is not audited is not probed";

  // At exit the final counts stay with the exited process.
  audited.go();
  bystander.go();
  audited.wait();
  bystander.wait();
  auto exited = [&] {
    snap = obs.snapshot();
    u = t::find_usage(snap, audited.pid());
    return u && u->exited;
  };
  ASSERT_TRUE(t::pump(obs, exited));
  EXPECT_EQ(launches_of(u->launches, "fikit_test_launch"), uint64_t{kLaunches});
  EXPECT_EQ(obs.counters().launch_drops, 0u);
}

TEST(LaunchAudit, UnprobedProcessesLeaveNoCounts) {
  Result<std::unique_ptr<LaunchAuditor>> opened = LaunchAuditor::open(test_audit_config());
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  LaunchAuditor& auditor = *opened.value();
  t::TestDevice dev;
  t::Child a({t::build_file("tests/fikit_bpf_test_child"), "launch", dev.path(), "100"});
  t::Child b({t::build_file("tests/fikit_bpf_test_child"), "launch", dev.path(), "100"});
  ASSERT_EQ(a.read_line(), "ready");
  ASSERT_EQ(b.read_line(), "ready");
  ASSERT_TRUE(auditor.audit(a.pid()).ok());
  a.go();
  b.go();
  ASSERT_EQ(a.read_line(), "done");
  ASSERT_EQ(b.read_line(), "done");
  // The uprobe program runs synchronously in the caller: the counts are final once "done".
  EXPECT_EQ(launches_of(auditor.counts(a.pid()), "fikit_test_launch"), 100u);
  EXPECT_TRUE(auditor.counts(b.pid()).empty());
  auditor.end(a.pid());
  EXPECT_TRUE(auditor.counts(a.pid()).empty()) << "end() drops the counts";
  EXPECT_FALSE(auditor.audited(a.pid()));
}

TEST(LaunchAudit, MissingEntryPointsAreAnError) {
  AuditConfig config = test_audit_config();
  config.functions = {"no_such_launch_function"};
  Result<std::unique_ptr<LaunchAuditor>> opened = LaunchAuditor::open(config);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  Result<int> r = opened.value()->audit(getpid());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("attach launch uprobes"), std::string::npos)
      << r.status().message();
}

TEST(LaunchAudit, LibcudaIsFoundInTheProcessMaps) {
  AuditConfig config = test_audit_config();
  config.library.clear();  // look for libcuda.so in the process: this test process has none
  Result<std::unique_ptr<LaunchAuditor>> opened = LaunchAuditor::open(config);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  Result<int> r = opened.value()->audit(getpid());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("libcuda.so"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace fikit::bpf
