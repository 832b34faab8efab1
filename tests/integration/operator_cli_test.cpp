// Every program's --version (project version, ABI, git commit) and --log-level, and a --help per
// fikit-broker command, run as the binaries themselves.
#include <fikit/version.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "harness.h"
#include "operator_users.h"

namespace fikit::test {
namespace {

// The programs that are built here (fikit-audit needs FIKIT_BPF).
std::vector<std::string> t_programs() {
  std::vector<std::string> out;
  for (const char* p : {"fikit-broker", "fikit-run", "fikit-audit", "fikit-calibrate"})
    if (access(t_bin(p).c_str(), X_OK) == 0) out.push_back(p);
  return out;
}

// fikit-calibrate links libcuda: run the tools with the simulated driver.
int t_run_tool(const std::vector<std::string>& argv, const t_TempDir& dir, std::string* out) {
  std::vector<std::string> cmd = {"/usr/bin/env", "LD_LIBRARY_PATH=" + t_build_dir() + "/sim"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return t_run(cmd, dir, out);
}

TEST(OperatorCli, EveryProgramPrintsItsVersion) {
  t_TempDir dir;
  std::vector<std::string> programs = t_programs();
  if (access(t_bin("fikit-top").c_str(), X_OK) == 0) programs.push_back("fikit-top");
  ASSERT_FALSE(programs.empty());
  for (const std::string& p : programs) {
    std::string out;
    EXPECT_EQ(t_run_tool({t_bin(p), "--version"}, dir, &out), 0) << p << ": " << out;
    // The commit is the configure-time one of whichever was built last: check the shape.
    const std::string want = p + " " + kProjectVersion + " (ABI " + std::to_string(kAbiMajor) +
                             "." + std::to_string(kAbiMinor) + ", commit ";
    EXPECT_EQ(out.rfind(want, 0), 0u) << p << ": " << out;
    EXPECT_EQ(out.back(), '\n');
  }
}

TEST(OperatorCli, EveryProgramTakesALogLevelAndRefusesABadOne) {
  t_TempDir dir;
  const std::vector<std::vector<std::string>> good = {
      {"fikit-broker", "status", "--log-level", "debug", "--help"},
      {"fikit-run", "--log-level", "info", "--help"},
      {"fikit-audit", "--log-level", "debug", "--help"},
      {"fikit-calibrate", "--log-level", "debug", "--help"}};
  for (auto argv : good) {
    if (access(t_bin(argv[0]).c_str(), X_OK) != 0) continue;
    std::string out;
    argv[0] = t_bin(argv[0]);
    EXPECT_EQ(t_run_tool(argv, dir, &out), 0) << argv[0] << ": " << out;
    // A bad level is refused before anything runs (--help would win, so it goes).
    argv.pop_back();
    argv[argv.size() - 1] = "loud";
    if (argv[0] == t_bin("fikit-run")) argv.insert(argv.end(), {"--", "true"});
    out.clear();
    EXPECT_EQ(t_run_tool(argv, dir, &out), 2) << argv[0] << ": " << out;
  }
}

TEST(OperatorCli, BrokerCommandsHaveTheirOwnHelp) {
  t_TempDir dir;
  for (const char* cmd : {"start", "stop", "status"}) {
    std::string out;
    EXPECT_EQ(t_run({t_bin("fikit-broker"), cmd, "--help"}, dir, &out), 0);
    EXPECT_NE(out.find(std::string("Usage: fikit-broker ") + cmd), std::string::npos) << out;
    EXPECT_NE(out.find("EXAMPLES"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace fikit::test
