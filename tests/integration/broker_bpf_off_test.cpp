// fikit-broker without its eBPF GPU-driver observer: --no-bpf, a load that fails (a BTF file that
// is not BTF), and an unprivileged broker. Each says why in `status` and keeps serving tenants;
// a failure is a warning in the log. Runs as any user (no BPF needed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "raw_tenant.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using nlohmann::json;

constexpr const char* kWarning = "GPU-driver observer unavailable, running without it";

// The status document once the broker answers (null json if it never does).
json wait_status(const std::string& socket) {
  json doc;
  t_eventually(
      [&] {
        doc = t_status(socket);
        return doc.is_object();
      },
      std::chrono::seconds(20));
  return doc;
}

// Register as a tenant and check that status lists it; return "" or what went wrong.
std::string register_and_check(const std::string& socket) {
  RawTenant tenant;
  if (!tenant.connect_and_register(socket, 0, "no-bpf-tenant")) return tenant.error();
  json doc = t_status(socket);
  json t = t_tenant(doc, getpid());
  if (t.is_null() || t["name"] != "no-bpf-tenant") return "tenant not listed: " + doc.dump();
  if (!doc["gpu"]["processes"].empty()) return "GPU processes without an observer: " + doc.dump();
  return "";
}

// A tenant (run as `uid` when the test is root) registers, is listed, and is reaped when it goes.
void expect_serves_tenants(const std::string& socket, uid_t uid = 0) {
  pid_t tenant = getpid();
  if (geteuid() == 0 && uid != 0) {
    tenant = fork();
    ASSERT_GE(tenant, 0);
    if (tenant == 0) {
      if (setgid(uid) != 0 || setuid(uid) != 0) _exit(126);
      std::string why = register_and_check(socket);
      fprintf(stderr, "%s\n", why.c_str());
      _exit(why.empty() ? 0 : 1);
    }
    int status = 0;
    waitpid(tenant, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the tenant failed (above)";
  } else {
    EXPECT_EQ(register_and_check(socket), "");
  }
  EXPECT_TRUE(t_eventually([&] { return t_tenant(t_status(socket), tenant).is_null(); },
                           std::chrono::seconds(10)))
      << "the tenant was not reaped";
}

TEST(BrokerWithoutBpf, NoBpfOption) {
  t_TempDir dir;
  t_Broker broker(dir, "none", {"--no-bpf"});
  ASSERT_TRUE(broker.running());
  json doc = wait_status(broker.socket());
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["gpu"]["observer"], "disabled");
  EXPECT_EQ(doc["gpu"]["reason"], "--no-bpf");
  expect_serves_tenants(broker.socket());
  EXPECT_EQ(t_read_file(broker.proc().err_path).find(kWarning), std::string::npos)
      << "--no-bpf is no failure";
}

TEST(BrokerWithoutBpf, FailedLoadWarnsAndServesTenants) {
  t_TempDir dir;
  const std::string junk = dir.file("not-btf");
  std::ofstream(junk) << "this is not BTF\n";
  t_Broker broker(dir, "none", {"--bpf-btf", junk});
  ASSERT_TRUE(broker.running());
  json doc = wait_status(broker.socket());
  ASSERT_TRUE(doc.is_object());
  const std::string log = t_read_file(broker.proc().err_path);
#if FIKIT_TEST_BPF_BUILT
  EXPECT_EQ(doc["gpu"]["observer"], "failed") << doc["gpu"].dump();
  EXPECT_FALSE(doc["gpu"]["reason"].get<std::string>().empty());
  EXPECT_NE(log.find(kWarning), std::string::npos) << log;
  EXPECT_NE(log.find(doc["gpu"]["reason"].get<std::string>()), std::string::npos)
      << "the warning says why: " << log;
#else
  EXPECT_EQ(doc["gpu"]["observer"], "disabled");
  EXPECT_NE(doc["gpu"]["reason"].get<std::string>().find("FIKIT_BPF=OFF"), std::string::npos);
#endif
  expect_serves_tenants(broker.socket());
}

// A broker run by an unprivileged user (here: nobody, when the test runs as root) cannot load
// BPF programs: it says so and carries on.
TEST(BrokerWithoutBpf, UnprivilegedBrokerWarnsAndServesTenants) {
  t_TempDir dir;
  // The broker refuses a run directory others can write: give it to the broker's user.
  if (geteuid() == 0) {
    ASSERT_EQ(chown(dir.path().c_str(), 65534, 65534), 0);
  }
  const std::string socket = dir.file("broker.sock");
  const std::string err = dir.file("broker.err");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(126);
    execl(t_bin("fikit-broker").c_str(), "fikit-broker", "start", "--foreground", "--socket",
          socket.c_str(), "--policy", "none", static_cast<char*>(nullptr));
    _exit(127);
  }
  json doc = wait_status(socket);
  const std::string log = t_read_file(err);
  if (doc.is_object()) {
#if FIKIT_TEST_BPF_BUILT
    EXPECT_EQ(doc["gpu"]["observer"], "failed") << doc["gpu"].dump();
    EXPECT_NE(log.find(kWarning), std::string::npos) << log;
#endif
    expect_serves_tenants(socket, 65534);
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(doc.is_object()) << "the unprivileged broker did not answer: " << log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
}

TEST(BrokerWithoutBpf, AuditNeedsTheObserver) {
  t_TempDir dir;
  t_Proc p = t_spawn({t_bin("fikit-broker"), "start", "--foreground", "--socket",
                      dir.file("b.sock"), "--no-bpf", "--audit-launches"},
                     {}, dir.file("usage"));
  ASSERT_TRUE(t_wait(p, std::chrono::seconds(10)));
  EXPECT_EQ(t_exit_code(p), 2);
  EXPECT_NE(t_read_file(p.err_path).find("--audit-launches needs the GPU-driver observer"),
            std::string::npos);
}

}  // namespace
}  // namespace fikit::test
