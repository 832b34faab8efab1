// Per-uid quotas (issue 16): one unprivileged uid that registers 1,100 tenants gets its quota and
// then clear refusals, and a registration from another uid (root) still succeeds; one uid's
// silent connections cannot keep its own or anyone's status request out; a burst of clients that
// do speak is not taken for a flood. The first two need root (a test user is created with useradd
// and removed after).
#include <fikit/fd_passing.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "raw_tenant.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;

constexpr int kRegistrations = 1100;
constexpr const char* kQuotaText = "the most one uid may register";

// An unprivileged user for the test's life.
class t_User {
 public:
  t_User() {
    name_ = "fikitq" + std::to_string(getpid());
    if (system(("useradd -M -N -s /usr/sbin/nologin " + name_ + " >/dev/null 2>&1").c_str()) != 0)
      return;
    if (passwd* pw = getpwnam(name_.c_str())) uid_ = pw->pw_uid, gid_ = pw->pw_gid;
  }
  ~t_User() {
    if (uid_) (void)!system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
  }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

 private:
  std::string name_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

struct Counts {
  int admitted = 0;
  int refused_by_quota = 0;
  int other = 0;
};

// In a child running as `user`: register kRegistrations tenants and keep them; report the counts
// on `report`, then wait to be killed.
[[noreturn]] void register_many(const std::string& socket, const t_User& user, int report) {
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;  // two descriptors per kept tenant
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (setgid(user.gid()) != 0 || setuid(user.uid()) != 0) _exit(126);
  Counts n;
  std::vector<std::unique_ptr<RawTenant>> kept;
  for (int i = 0; i < kRegistrations; i++) {
    auto t = std::make_unique<RawTenant>();
    if (t->connect_and_register(socket, kPriorityLow, "flood")) {
      n.admitted++;
      kept.push_back(std::move(t));
    } else if (t->error().find(kQuotaText) != std::string::npos) {
      n.refused_by_quota++;
    } else {
      n.other++;
      if (n.other == 1) fprintf(stderr, "unexpected: %s\n", t->error().c_str());
    }
  }
  (void)!write(report, &n, sizeof(n));
  pause();
  _exit(0);
}

TEST(HardeningQuota, OneUidCannotTakeEveryTenantSlot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (useradd, setuid)";
  t_User user;
  ASSERT_NE(user.uid(), 0u) << "useradd failed";
  t_TempDir dir;
  chmod(dir.path().c_str(), 0755);
  t_Broker broker(dir, "priority", {"--no-bpf"});
  ASSERT_TRUE(broker.running());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) register_many(broker.socket(), user, p[1]);
  Counts n;
  ASSERT_EQ(read(p[0], &n, sizeof(n)), static_cast<ssize_t>(sizeof(n)));
  EXPECT_EQ(n.admitted, 256);  // Quotas::tenants_per_uid
  EXPECT_EQ(n.refused_by_quota, kRegistrations - 256);
  EXPECT_EQ(n.other, 0);
  // Another uid is still served, and status still answers.
  RawTenant root;
  EXPECT_TRUE(root.connect_and_register(broker.socket(), kPriorityLow, "root")) << root.error();
  nlohmann::json doc = t_status(broker.socket());
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["broker"]["tenants"], 257) << doc["broker"].dump();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(p[0]);
  close(p[1]);
  EXPECT_TRUE(t_eventually(
      [&] {
        nlohmann::json d = t_status(broker.socket());
        return d.is_object() && d["broker"]["tenants"] == 1;
      },
      30s));
  // The refusals were logged, but not one line each (at most one a second).
  std::string log = t_read_file(broker.proc().err_path);
  size_t lines = 0;
  for (size_t at = 0; (at = log.find("refused pid", at)) != std::string::npos; at++) lines++;
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, 30u) << log.substr(0, 4096);
  EXPECT_NE(log.find(kQuotaText), std::string::npos);
}

TEST(HardeningQuota, SilentConnectionsOfOneUidDoNotKeepStatusOut) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (useradd, setuid)";
  t_User user;
  ASSERT_NE(user.uid(), 0u) << "useradd failed";
  t_TempDir dir;
  chmod(dir.path().c_str(), 0755);
  t_Broker broker(dir, "priority", {"--no-bpf"});
  ASSERT_TRUE(broker.running());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) {
    if (setgid(user.gid()) != 0 || setuid(user.uid()) != 0) _exit(126);
    std::vector<int> held = t_silent_connections(broker.socket(), 200);
    // Its own status request displaces its oldest silent connection.
    bool own = t_eventually([&] { return t_status(broker.socket()).is_object(); }, 20s);
    char c = own ? 1 : 0;
    (void)!write(p[1], &c, 1);
    pause();
    _exit(0);
  }
  char own = 0;
  ASSERT_EQ(read(p[0], &own, 1), 1);
  EXPECT_EQ(own, 1) << "the user's own status request never got through";
  EXPECT_TRUE(t_status(broker.socket()).is_object()) << "root's status request was kept out";
  RawTenant root;
  EXPECT_TRUE(root.connect_and_register(broker.socket(), kPriorityLow, "root")) << root.error();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(p[0]);
  close(p[1]);
  EXPECT_LT(t_read_file(broker.proc().err_path).size(), 64u * 1024);
}

// Many clients of one uid that connect and register at once (a job starting its workers) are no
// flood: every one is admitted, however the broker's accepts and reads interleave.
TEST(HardeningQuota, ABurstOfRegistrationsIsNoFlood) {
  t_TempDir dir;
  t_Broker broker(dir, "priority", {"--no-bpf"});
  ASSERT_TRUE(broker.running());
  constexpr int kBurst = 100;  // more than Quotas::silent_per_uid, less than the listen backlog
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", broker.socket().c_str());
  RegisterRequest req{};
  req.hdr = msg_header(MsgType::kRegister, sizeof(req));
  req.priority = kPriorityLow;
  snprintf(req.name, sizeof(req.name), "burst");
  std::vector<int> fds;
  for (int i = 0; i < kBurst; i++) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
    ASSERT_EQ(send(fd, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
    fds.push_back(fd);
  }
  int admitted = 0;
  for (int fd : fds) {
    RegisterReply reply{};
    int seg = -1;
    if (fd__recv(fd, &reply, sizeof(reply), &seg) == sizeof(reply) && reply.status == 0) admitted++;
    if (seg >= 0) close(seg);
  }
  EXPECT_EQ(admitted, kBurst);
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace fikit::test
