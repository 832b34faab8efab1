// A real fikit-broker (<FIKIT_BUILD_DIR>/bin/fikit-broker start --foreground) spoken to with raw
// sockets: admission and its refusals, status, reaping of dead tenants, a second broker on the same
// socket, the daemonized start, stop and SIGTERM.
#include <fcntl.h>
#include <fikit/fd_passing.h>
#include <fikit/protocol.h>
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "t_command.h"

namespace fikit {
namespace {

constexpr uint64_t kDeadlineNs = 20'000'000'000;  // generous: the machine is shared

// Wait until pred() holds or the deadline passes; check every millisecond.
template <typename Pred>
bool t_wait_for(Pred pred) {
  uint64_t end = now_ns() + kDeadlineNs;
  while (!pred()) {
    if (now_ns() > end) return false;
    usleep(1000);
  }
  return true;
}

int t_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return fd;
  close(fd);
  return -1;
}

RegisterRequest t_request(uint32_t priority, const char* name) {
  RegisterRequest r{};
  r.hdr = msg_header(MsgType::kRegister, sizeof(r));
  r.priority = priority;
  snprintf(r.name, sizeof(r.name), "%s", name);
  return r;
}

// Send `req` on a new connection and read the reply. The connection is returned in *fd_out (or
// closed if fd_out is null), the segment's descriptor sent with the reply in *seg_fd (or closed).
RegisterReply t_register(const std::string& sock, const RegisterRequest& req, int* fd_out = nullptr,
                         int* seg_fd = nullptr) {
  RegisterReply reply{};
  reply.status = 1;  // "no reply"
  int fd = t_connect(sock);
  EXPECT_GE(fd, 0);
  if (fd < 0) return reply;
  EXPECT_EQ(send(fd, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
  int got = -1;
  EXPECT_EQ(fd__recv(fd, &reply, sizeof(reply), &got), static_cast<ssize_t>(sizeof(reply)));
  if (seg_fd)
    *seg_fd = got;
  else if (got >= 0)
    close(got);
  if (fd_out)
    *fd_out = fd;
  else
    close(fd);
  return reply;
}

// A broker in the foreground on <tmpdir>/b.sock, its output in <tmpdir>/broker.out.
class BrokerControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(t_broker_bin().c_str(), X_OK), 0)
        << t_broker_bin() << " not found: build fikit-broker and set FIKIT_BUILD_DIR";
    char tmpl[] = "/tmp/fikit-ctl-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    chmod(dir.c_str(), 0755);
    sock = dir + "/b.sock";
    pid = start_foreground(sock, dir + "/broker.out");
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(t_wait_for([&] {
      int fd = t_connect(sock);
      if (fd >= 0) close(fd);
      return fd >= 0 || waitpid(pid, nullptr, WNOHANG) != 0;
    }));
    ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "broker died: " << output();
  }
  void TearDown() override {
    if (pid > 0) {  // SIGTERM, so that it removes its segments; SIGKILL if it hangs
      kill(pid, SIGTERM);
      if (!t_wait_for([&] { return waitpid(pid, nullptr, WNOHANG) == pid; })) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    std::string out;
    t_run("rm -rf " + dir, &out);
  }

  // fork/exec `fikit-broker start --foreground` with its output in `out_path`.
  pid_t start_foreground(const std::string& socket_path, const std::string& out_path,
                         uid_t uid = 0) {
    std::string bin = t_broker_bin();
    pid_t p = fork();
    if (p == 0) {
      int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      if (uid != 0 && setuid(uid) != 0) _exit(99);
      execl(bin.c_str(), bin.c_str(), "start", "--foreground", "--socket", socket_path.c_str(),
            "--policy", "priority", static_cast<char*>(nullptr));
      _exit(127);
    }
    return p;
  }
  std::string output(const char* file = "broker.out") const {
    std::ifstream f(dir + "/" + file);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  nlohmann::json status() {
    std::string out;
    EXPECT_EQ(t_run(t_broker_bin() + " status --json --socket " + sock, &out), 0) << out;
    return nlohmann::json::parse(out, nullptr, false);
  }
  bool lists_pid(pid_t p) {
    nlohmann::json s = status();
    if (s.is_discarded()) return false;
    for (const auto& t : s["tenants"])
      if (t["pid"] == p) return true;
    return false;
  }
  // Stop the broker with the CLI and check it exited 0.
  void stop() {
    std::string out;
    EXPECT_EQ(t_run(t_broker_bin() + " stop --socket " + sock, &out), 0) << out;
    int st = 0;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << output();
    pid = 0;
  }

  std::string dir, sock;
  pid_t pid = 0;
};

TEST_F(BrokerControlTest, RegisterCreatesPrivateSegment) {
  int conn = -1;
  int fd = -1;
  RegisterReply r = t_register(sock, t_request(kPriorityLow, "ctl-test"), &conn, &fd);
  ASSERT_EQ(r.status, 0) << r.error;
  EXPECT_EQ(r.hdr.magic, kMsgMagic);
  EXPECT_EQ(r.hdr.type, static_cast<uint32_t>(MsgType::kRegisterReply));
  EXPECT_GT(r.tenant_id, 0u);
  EXPECT_EQ(r.segment_size, sizeof(Segment));
  ASSERT_GE(fd, 0) << "no segment with the reply";
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, getuid());
  ASSERT_GE(static_cast<size_t>(st.st_size), sizeof(Segment));
  void* p = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(p, MAP_FAILED);
  auto* seg = static_cast<Segment*>(p);
  EXPECT_EQ(segment_check(seg, sizeof(Segment)), nullptr);
  EXPECT_EQ(seg->hdr.magic, kSegmentMagic);
  EXPECT_EQ(seg->hdr.owner_pid, getpid());
  EXPECT_EQ(seg->hdr.priority, kPriorityLow);
  EXPECT_EQ(seg->hdr.tenant_id, r.tenant_id);
  EXPECT_STREQ(seg->hdr.name, "ctl-test");
  EXPECT_TRUE(t_wait_for(
      [&] { return seg->broker.state.load() == static_cast<uint32_t>(TenantState::kActive); }));
  // An LP request is granted (no HP tenant is busy).
  uint32_t pos = 0;
  ASSERT_TRUE(
      ring__push(&seg->ring, EntryFields{EntryKind::kLpRequest, 0, 0, 0, 7, now_ns()}, &pos));
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (seg->broker.broker_sleeping.load()) {
    seg->broker.doorbell.fetch_add(1);
    futex_wake(&seg->broker.doorbell, 1);
  }
  EXPECT_TRUE(t_wait_for([&] { return seg->broker.granted.load() == pos + 1; }));
  nlohmann::json s = status();
  ASSERT_FALSE(s.is_discarded());
  ASSERT_EQ(s["tenants"].size(), 1u);
  EXPECT_EQ(s["tenants"][0]["name"], "ctl-test");
  EXPECT_EQ(s["tenants"][0]["state"], "active");
  EXPECT_EQ(s["tenants"][0]["granted"], 1);
  EXPECT_EQ(s["broker"]["policy"], "priority");
  // The table lists it too.
  std::string table;
  EXPECT_EQ(t_run(t_broker_bin() + " status --socket " + sock, &table), 0);
  EXPECT_NE(table.find("ctl-test"), std::string::npos) << table;
  stop();
  // Stopping closes the segment for the client and removes the socket and lock file.
  EXPECT_EQ(seg->broker.state.load(), static_cast<uint32_t>(TenantState::kClosed));
  EXPECT_NE(access(sock.c_str(), F_OK), 0);
  EXPECT_NE(access((sock + ".lock").c_str(), F_OK), 0);
  munmap(p, sizeof(Segment));
  close(conn);
}

TEST_F(BrokerControlTest, WrongAbiMajorIsRefusedNamingBothVersions) {
  RegisterRequest req = t_request(kPriorityLow, "old");
  req.hdr.abi_major = kAbiMajor + 8;
  RegisterReply r = t_register(sock, req);
  EXPECT_LT(r.status, 0);
  std::string err = r.error;
  EXPECT_NE(err.find("ABI " + std::to_string(kAbiMajor + 8) + "."), std::string::npos) << err;
  EXPECT_NE(err.find("ABI " + std::to_string(kAbiMajor) + "."), std::string::npos) << err;
  EXPECT_EQ(r.segment_size, 0u);
}

TEST_F(BrokerControlTest, BadRequestsAreRefusedAndBrokerCarriesOn) {
  RegisterRequest req = t_request(kPriorityLevels, "bad-prio");
  RegisterReply r = t_register(sock, req);
  EXPECT_EQ(r.status, -EINVAL);
  EXPECT_NE(std::string(r.error).find("priority"), std::string::npos) << r.error;

  req = t_request(kPriorityLow, "bad-flags");
  req.flags = 4;
  EXPECT_EQ(t_register(sock, req).status, -EINVAL);

  req = t_request(kPriorityLow, "");
  memset(req.name, 'x', sizeof(req.name));  // no NUL
  r = t_register(sock, req);
  EXPECT_EQ(r.status, -EINVAL);
  EXPECT_NE(std::string(r.error).find("NUL"), std::string::npos) << r.error;

  req = t_request(kPriorityLow, "bad-magic");
  req.hdr.magic = 0x12345678;
  EXPECT_LT(t_register(sock, req).status, 0);

  int fd = t_connect(sock);  // garbage of an odd size
  ASSERT_GE(fd, 0);
  char junk[7] = {1, 2, 3, 4, 5, 6, 7};
  send(fd, junk, sizeof(junk), 0);
  char buf[512];
  recv(fd, buf, sizeof(buf), 0);
  close(fd);

  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  nlohmann::json s = status();
  ASSERT_FALSE(s.is_discarded());
  EXPECT_EQ(s["tenants"].size(), 0u);
}

TEST_F(BrokerControlTest, SecondBrokerOnSameSocketFails) {
  std::string out;
  int code = t_run(t_broker_bin() + " start --foreground --socket " + sock, &out);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("another fikit-broker"), std::string::npos) << out;
  code = t_run(t_broker_bin() + " start --socket " + sock + " --log " + dir + "/second.log", &out);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("another fikit-broker"), std::string::npos) << out;
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  EXPECT_FALSE(status().is_discarded());  // the first one still answers
}

// Register from a child, then SIGKILL it: status must stop listing it, and its segment goes.
TEST_F(BrokerControlTest, KilledTenantIsReaped) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) {
    int fd = -1;
    RegisterReply r = t_register(sock, t_request(kPriorityHigh, "doomed"), &fd);
    ssize_t n = write(p[1], &r, sizeof(r));
    (void)n;
    pause();
    _exit(0);
  }
  RegisterReply r{};
  ASSERT_EQ(read(p[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
  ASSERT_EQ(r.status, 0) << r.error;
  EXPECT_TRUE(lists_pid(child));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(t_wait_for([&] { return !lists_pid(child); }));
  close(p[0]);
  close(p[1]);
}

// The registered process dies while another process still holds its connection: the pidfd reaps.
TEST_F(BrokerControlTest, TenantIsReapedByPidfdWhileConnectionLives) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) {
    int fd = -1;
    RegisterReply r = t_register(sock, t_request(kPriorityLow, "forker"), &fd);
    pid_t holder = fork();  // inherits the connection and keeps it open
    if (holder == 0) {
      pause();
      _exit(0);
    }
    ssize_t n = write(p[1], &holder, sizeof(holder));
    (void)n;
    _exit(r.status == 0 ? 0 : 1);
  }
  pid_t holder = 0;
  ASSERT_EQ(read(p[0], &holder, sizeof(holder)), static_cast<ssize_t>(sizeof(holder)));
  int st = 0;
  waitpid(child, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(t_wait_for([&] { return !lists_pid(child); }));
  kill(holder, SIGKILL);
  close(p[0]);
  close(p[1]);
}

TEST_F(BrokerControlTest, SigtermStopsCleanly) {
  kill(pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  pid = 0;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << output();
  EXPECT_NE(access(sock.c_str(), F_OK), 0);
  std::string out;
  EXPECT_EQ(t_run(t_broker_bin() + " status --socket " + sock, &out), 3) << "not running (LSB)";
  EXPECT_NE(out.find("no fikit-broker is running"), std::string::npos) << out;
}

TEST_F(BrokerControlTest, SighupReopensLogAndKeepsRunning) {
  kill(pid, SIGHUP);
  EXPECT_TRUE(t_wait_for([&] { return output().find("log reopened") != std::string::npos; }))
      << output();
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  EXPECT_FALSE(status().is_discarded());
}

TEST_F(BrokerControlTest, StopFromAnotherUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  pid_t child = fork();
  if (child == 0) {
    if (setuid(65534) != 0) _exit(2);
    std::string bin = t_broker_bin();
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 2);
    execl(bin.c_str(), bin.c_str(), "stop", "--socket", sock.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  EXPECT_NE(output().find("stop refused"), std::string::npos) << output();
}

// `start` without --foreground returns once the broker listens; a stale socket is replaced.
TEST_F(BrokerControlTest, DaemonStartReplacesStaleSocketAndStops) {
  std::string other = dir + "/d.sock";
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);  // leave a socket file nobody listens on
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", other.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
  std::string out;
  ASSERT_EQ(t_run(t_broker_bin() + " start --socket " + other, &out), 0) << out;
  EXPECT_NE(out.find("started"), std::string::npos) << out;
  fd = t_connect(other);  // no waiting: start returned only once it listened
  EXPECT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(access((dir + "/broker.log").c_str(), F_OK), 0);  // log in the socket's directory
  EXPECT_EQ(t_run(t_broker_bin() + " stop --socket " + other, &out), 0) << out;
  EXPECT_NE(access(other.c_str(), F_OK), 0);
}

// As root, a segment belongs to the tenant's uid; a broker that is not root refuses other uids.
TEST_F(BrokerControlTest, SegmentOwnershipFollowsTheTenantUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  constexpr uid_t kNobody = 65534;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  if (child == 0) {
    if (setuid(kNobody) != 0) _exit(2);
    int seg = -1;
    RegisterReply r = t_register(sock, t_request(kPriorityLow, "nobody"), nullptr, &seg);
    struct stat st {};
    if (seg >= 0) fstat(seg, &st);
    ssize_t n = write(p[1], &r, sizeof(r));
    n = write(p[1], &st.st_uid, sizeof(st.st_uid));
    (void)n;
    _exit(0);
  }
  RegisterReply r{};
  uid_t owner = 0;
  ASSERT_EQ(read(p[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
  ASSERT_EQ(read(p[0], &owner, sizeof(owner)), static_cast<ssize_t>(sizeof(owner)));
  waitpid(child, nullptr, 0);
  ASSERT_EQ(r.status, 0) << r.error;
  EXPECT_EQ(owner, kNobody);
  // A broker running as nobody cannot serve root.
  std::string sock2 = dir + "/nobody/n.sock";
  // The broker refuses a run directory others can write: give it to the broker's user.
  mkdir((dir + "/nobody").c_str(), 0700);
  ASSERT_EQ(chown((dir + "/nobody").c_str(), kNobody, kNobody), 0);
  pid_t b2 = start_foreground(sock2, dir + "/nobody.out", kNobody);
  ASSERT_TRUE(t_wait_for([&] {
    int fd = t_connect(sock2);
    if (fd >= 0) close(fd);
    return fd >= 0 || waitpid(b2, nullptr, WNOHANG) != 0;
  }));
  RegisterReply r2 = t_register(sock2, t_request(kPriorityLow, "root"));
  EXPECT_EQ(r2.status, -EPERM);
  EXPECT_NE(std::string(r2.error).find("not root"), std::string::npos) << r2.error;
  kill(b2, SIGTERM);
  int s2 = 0;
  waitpid(b2, &s2, 0);
  EXPECT_TRUE(WIFEXITED(s2) && WEXITSTATUS(s2) == 0);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace fikit
