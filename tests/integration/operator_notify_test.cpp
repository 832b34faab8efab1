// fikit-broker under systemd (Type=notify): READY=1 once the socket listens and STOPPING=1 when it
// stops, sent to $NOTIFY_SOCKET (a path or an abstract name) by hand, and log lines with
// journald's priority prefixes. The test plays systemd: it listens on the notify socket.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "harness.h"

namespace fikit::test {
namespace {

// A datagram socket bound to `name` (a path, or "@abstract").
class t_NotifySocket {
 public:
  explicit t_NotifySocket(const std::string& name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, name.data(), name.size());
    if (name[0] == '@') a.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                           (name[0] == '@' ? 0 : 1));
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0) << strerror(errno);
  }
  ~t_NotifySocket() { close(fd_); }
  // Read datagrams until one contains `what`; return it ("" after 20 s).
  std::string wait_for(const std::string& what) {
    for (int i = 0; i < 100; i++) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20'000) != 1) return "";
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return "";
      std::string msg(buf, static_cast<size_t>(n));
      if (msg.find(what) != std::string::npos) return msg;
    }
    return "";
  }

 private:
  int fd_ = -1;
};

void t_expect_notify_cycle(const std::string& notify_name) {
  t_TempDir dir;
  t_NotifySocket systemd(notify_name);
  const std::string socket = dir.file("broker.sock");
  t_Proc p = t_spawn({t_bin("fikit-broker"), "start", "--foreground", "--socket", socket,
                      "--policy", "none", "--no-bpf", "--switch-cost-us", "0"},
                     {{"NOTIFY_SOCKET", notify_name}}, dir.file("broker"));
  std::string ready = systemd.wait_for("READY=1");
  ASSERT_NE(ready, "") << t_read_file(p.err_path);
  EXPECT_TRUE(t_socket_accepts(socket)) << "READY=1 comes after the socket listens";
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(p.pid)), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=listening on " + socket), std::string::npos) << ready;
  ASSERT_EQ(kill(p.pid, SIGTERM), 0);
  std::string stopping = systemd.wait_for("STOPPING=1");
  EXPECT_NE(stopping, "");
  EXPECT_NE(stopping.find("STATUS=stopping: signal TERM"), std::string::npos) << stopping;
  ASSERT_TRUE(t_wait(p, std::chrono::seconds(10)));
  EXPECT_EQ(t_exit_code(p), 0);
  // journald reads the priority from each line's "<N>" prefix.
  const std::string log = t_read_file(p.err_path);
  EXPECT_EQ(log.rfind("<6>", 0), 0u) << log;
  EXPECT_NE(log.find("\n<6>"), std::string::npos) << log;
}

TEST(OperatorNotify, ReadyAndStoppingOnAPathSocket) {
  t_TempDir dir;
  t_expect_notify_cycle(dir.file("notify.sock"));
}

TEST(OperatorNotify, ReadyAndStoppingOnAnAbstractSocket) {
  t_expect_notify_cycle("@fikit-notify-test-" + std::to_string(getpid()));
}

TEST(OperatorNotify, NoPrefixesOutsideSystemd) {
  t_TempDir dir;
  const std::string socket = dir.file("broker.sock");
  t_Proc p = t_spawn({t_bin("fikit-broker"), "start", "--foreground", "--socket", socket,
                      "--policy", "none", "--no-bpf", "--switch-cost-us", "0"},
                     {{"NOTIFY_SOCKET", ""}, {"JOURNAL_STREAM", ""}}, dir.file("broker"));
  ASSERT_TRUE(t_eventually([&] { return t_socket_accepts(socket); }, std::chrono::seconds(20)))
      << t_read_file(p.err_path);
  kill(p.pid, SIGTERM);
  ASSERT_TRUE(t_wait(p, std::chrono::seconds(10)));
  const std::string log = t_read_file(p.err_path);
  EXPECT_EQ(log.find("<6>"), std::string::npos) << log;
  EXPECT_NE(log.find("INFO listening on"), std::string::npos) << log;
}

}  // namespace
}  // namespace fikit::test
