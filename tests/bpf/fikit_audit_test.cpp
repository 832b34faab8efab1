// Smoke tests of fikit-audit: --help, usage errors, and short --json runs that load the observer
// (and the launch audit) over a child driving the test device. Root and BPF are required for the
// runs (exit 77 otherwise).
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "t_bpf.h"

namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new t::BpfEnvironment);

struct AuditRun {
  int status = 0;
  std::string out;
};

AuditRun run_audit(const std::vector<std::string>& args, int go_lines = 0) {
  std::vector<std::string> argv = {t::build_file("bin/fikit-audit")};
  argv.insert(argv.end(), args.begin(), args.end());
  t::Child child(argv);
  for (int i = 0; i < go_lines; i++) child.go();  // for children that wait for a go-ahead
  AuditRun r;
  r.out = child.read_all();
  r.status = child.wait();
  return r;
}

// The JSON document at the end of fikit-audit's output (the command's own lines come first).
nlohmann::json report_of(const std::string& out) {
  size_t at = out.compare(0, 2, "{\n") == 0 ? 0 : out.find("\n{\n");  // nested ones are indented
  if (at == std::string::npos) return nlohmann::json();
  if (at) at++;
  return nlohmann::json::parse(out.substr(at), nullptr, false);
}

const nlohmann::json* program(const nlohmann::json& report, const std::string& name) {
  for (const auto& p : report["programs"])
    if (p["name"] == name) return &p;
  return nullptr;
}

TEST(FikitAudit, HelpSaysWhatItMeasuresAndTheAuditCost) {
  AuditRun r = run_audit({"--help"});
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
  EXPECT_NE(r.out.find("usage: fikit-audit"), std::string::npos);
  EXPECT_NE(r.out.find("1.35 us"), std::string::npos) << "the audit-mode cost is stated";
  EXPECT_NE(r.out.find("bpftool prog show"), std::string::npos);
  EXPECT_NE(r.out.find("EXAMPLES"), std::string::npos);
}

TEST(FikitAudit, UsageErrorsExitTwo) {
  EXPECT_EQ(WEXITSTATUS(run_audit({"--test-device", "/dev/null"}).status), 2);
  EXPECT_EQ(WEXITSTATUS(run_audit({"--interval", "soon"}).status), 2);
  EXPECT_EQ(WEXITSTATUS(run_audit({"--audit-launches"}).status), 2);
}

TEST(FikitAudit, JsonRunMeasuresTheObserverOverACommand) {
  t::TestDevice dev;
  constexpr int kIoctls = 2000;
  AuditRun r = run_audit({"--json", "--load", "--test-device", dev.path(), "--",
                          t::build_file("tests/fikit_bpf_test_child"), "ioctl-loop", dev.path(),
                          std::to_string(kIoctls)});
  ASSERT_EQ(WEXITSTATUS(r.status), 0) << r.out;
  const nlohmann::json report = report_of(r.out);
  ASSERT_TRUE(report.is_object()) << r.out;
  EXPECT_GT(report["interval_s"].get<double>(), 0);
  const nlohmann::json* in = program(report, "fikit_ioctl_in");
  const nlohmann::json* out = program(report, "fikit_ioctl_out");
  ASSERT_TRUE(in && out) << r.out;
  EXPECT_GE((*in)["runs"].get<uint64_t>(), uint64_t{kIoctls});
  EXPECT_GT((*in)["ns_per_run"].get<double>(), 0);
  EXPECT_EQ((*in)["type"], "tracepoint");
  EXPECT_EQ(
      (*in)["bpftool_line"].get<std::string>().rfind(
          std::to_string((*in)["id"].get<uint32_t>()) + ": tracepoint  name fikit_ioctl_in", 0),
      0u)
      << (*in)["bpftool_line"];
  EXPECT_GE(report["traced_ioctls"].get<uint64_t>(), uint64_t{kIoctls});
  EXPECT_GT(report["ns_per_traced_ioctl"].get<double>(), 0);
  EXPECT_EQ(report["command"]["gpu_ioctls"].get<uint64_t>(), uint64_t{kIoctls});
  EXPECT_EQ(report["command"]["wait_status"].get<int>(), 0);
}

TEST(FikitAudit, AuditLaunchesCountsTheCommandsLaunches) {
  t::TestDevice dev;
  constexpr int kLaunches = 300;
  AuditRun r = run_audit(
      {"--json", "--load", "--test-device", dev.path(), "--audit-launches", "--libcuda",
       t::build_file("tests/libfikit_bpf_testlib.so"), "--functions",
       "fikit_test_launch,fikit_test_launch_ex", "--", t::build_file("tests/fikit_bpf_test_child"),
       "launch", dev.path(), std::to_string(kLaunches)},
      2);
  ASSERT_EQ(WEXITSTATUS(r.status), 0) << r.out;
  const nlohmann::json report = report_of(r.out);
  ASSERT_TRUE(report.is_object()) << r.out;
  EXPECT_EQ(report["command"]["launches"].get<uint64_t>(), uint64_t{kLaunches + kLaunches / 2});
  const nlohmann::json* launch = program(report, "fikit_launch");
  ASSERT_NE(launch, nullptr) << r.out;
  EXPECT_EQ((*launch)["runs"].get<uint64_t>(), uint64_t{kLaunches + kLaunches / 2});
}

TEST(FikitAudit, ACommandThatFailsExitsThree) {
  t::TestDevice dev;
  AuditRun r = run_audit({"--load", "--test-device", dev.path(), "--", "/bin/false"});
  EXPECT_EQ(WEXITSTATUS(r.status), 3) << r.out;
  EXPECT_NE(r.out.find("fikit_ioctl_in"), std::string::npos) << "the report is still printed";
}

}  // namespace
