// File-descriptor exhaustion (issue 16): 1,100 connections that never speak, against a broker with
// its default limits (which it raises to the hard limit) and against one held to 24 descriptors
// (prlimit), where accept(2) fails with EMFILE. Either way `status` still answers, the log stays
// small (it once took 278,000 "Too many open files" lines a second), and the broker runs on.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;

constexpr int kConnections = 1100;
constexpr size_t kMaxLogBytes = 32 * 1024;

// A broker started as `prefix... fikit-broker start --foreground ...`, stopped with SIGTERM.
struct t_PrefixedBroker {
  std::string socket;
  t_Proc proc;
  t_PrefixedBroker(const t_TempDir& dir, std::vector<std::string> argv) {
    socket = dir.file("b.sock");
    argv.insert(argv.end(),
                {t_bin("fikit-broker"), "start", "--foreground", "--socket", socket, "--policy",
                 "priority", "--no-bpf", "--profile-dir", dir.file("profiles")});
    proc = t_spawn(argv, {}, dir.file("broker"));
    EXPECT_TRUE(t_eventually(
        [&] {
          return t_read_file(proc.err_path).find("listening on") != std::string::npos ||
                 t_wait(proc, 0ms);
        },
        20s))
        << t_read_file(proc.err_path);
  }
  ~t_PrefixedBroker() {
    kill(proc.pid, SIGTERM);
    if (!t_wait(proc, 10s)) kill(proc.pid, SIGKILL), t_wait(proc, 5s);
  }
};

// The soft and hard "Max open files" of a process.
std::pair<std::string, std::string> nofile_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream w(line.substr(14));
    std::string soft, hard;
    w >> soft >> hard;
    return {soft, hard};
  }
  return {};
}

void flood_then_check(const t_PrefixedBroker& b) {
  std::vector<int> held = t_silent_connections(b.socket, kConnections);
  EXPECT_GT(held.size(), 0u);
  EXPECT_TRUE(t_eventually([&] { return t_status(b.socket).is_object(); }, 30s))
      << "status never answered";
  std::vector<int> more = t_silent_connections(b.socket, kConnections);  // while the first stay
  EXPECT_TRUE(t_eventually([&] { return t_status(b.socket).is_object(); }, 30s));
  for (int fd : held) close(fd);
  for (int fd : more) close(fd);
  std::string log = t_read_file(b.proc.err_path);
  EXPECT_LT(log.size(), kMaxLogBytes) << log.substr(0, 4096);
  t_Proc p = b.proc;
  EXPECT_FALSE(t_wait(p, 0ms)) << log;
}

TEST(HardeningFd, SilentConnectionsWithDefaultLimits) {
  t_TempDir dir;
  t_PrefixedBroker b(dir, {});
  auto [soft, hard] = nofile_of(b.proc.pid);
  EXPECT_EQ(soft, hard) << "the broker did not raise its soft RLIMIT_NOFILE";
  flood_then_check(b);
}

TEST(HardeningFd, SilentConnectionsWithDescriptorsExhausted) {
  if (access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "needs prlimit (util-linux)";
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizer runtime needs descriptors of its own (UBSan's vptr check reported a valid
  // nlohmann::json object as invalid with none left, and aborted): the release build runs this.
  GTEST_SKIP() << "not under sanitizers: their runtime needs free descriptors too";
#endif
  t_TempDir dir;
  t_PrefixedBroker b(dir, {"/usr/bin/prlimit", "--nofile=24:24", "--"});
  EXPECT_EQ(nofile_of(b.proc.pid).first, "24");
  flood_then_check(b);
  // The flood did reach EMFILE, and said so in few lines.
  std::string log = t_read_file(b.proc.err_path);
  EXPECT_NE(log.find("Too many open files"), std::string::npos) << log.substr(0, 4096);
}

}  // namespace
}  // namespace fikit::test
