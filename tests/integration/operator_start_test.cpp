// `fikit-broker start` as an operator meets it: on a fresh boot (no run directory) and after a
// crash, as a user who may not create the run directory, and with symlinks planted where a root
// broker writes (<socket>.lock, the log, the profile directory). Nothing may be written through
// them. The root cases skip unless the test runs as root (CI does).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "harness.h"
#include "operator_users.h"

namespace fikit::test {
namespace {

mode_t t_mode(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// The broker's options that keep a test start quick and self-contained.
std::vector<std::string> t_start(const std::string& socket, bool foreground = false) {
  std::vector<std::string> argv = {
      t_bin("fikit-broker"), "start", "--socket", socket, "--policy", "none", "--no-bpf",
      "--switch-cost-us",    "0"};
  if (foreground) argv.push_back("--foreground");
  return argv;
}

int t_stop(const t_TempDir& dir, const std::string& socket) {
  std::string out;
  return t_run({t_bin("fikit-broker"), "stop", "--socket", socket}, dir, &out);
}

// A root-only file standing for /etc/shadow: what the planted symlinks point at.
std::string t_victim(const t_TempDir& dir) {
  std::string v = dir.file("victim");
  std::ofstream(v) << "secret\n";
  chmod(v.c_str(), 0600);
  return v;
}

TEST(OperatorStart, FreshBootCreatesTheRunDirectoryThenStartsAgainAfterACrash) {
  t_TempDir dir;
  // Like /run/fikit after a reboot: neither it nor its parent exists.
  const std::string run = dir.file("run/fikit");
  const std::string socket = run + "/broker.sock";
  std::string out;
  ASSERT_EQ(t_run(t_start(socket), dir, &out), 0) << out;
  EXPECT_NE(out.find("started (pid"), std::string::npos) << out;
  EXPECT_EQ(t_mode(run), 0755u);
  EXPECT_EQ(t_mode(socket + ".lock"), 0644u);
  EXPECT_EQ(t_mode(run + "/broker.log"), 0640u);
  EXPECT_EQ(t_mode(socket), 0666u) << "the socket's mode is set before bind, not after";
  EXPECT_EQ(t_mode(run + "/profiles"), 0700u) << "a private broker keeps its profiles beside it";
  const std::string pid_text = t_read_file(socket + ".lock");
  pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  ASSERT_GT(pid, 1);
  // A crash leaves the socket and the lock file behind; the next start takes them over.
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(t_eventually([&] { return kill(pid, 0) != 0; }, std::chrono::seconds(10)));
  out.clear();
  ASSERT_EQ(t_run(t_start(socket), dir, &out), 0) << out;
  EXPECT_NE(t_read_file(run + "/broker.log").find("removing stale socket"), std::string::npos);
  EXPECT_EQ(t_stop(dir, socket), 0);
}

TEST(OperatorStart, NotRootSaysWhatToDo) {
  if (!t_can_make_users()) GTEST_SKIP() << "needs root and useradd";
  t_TempDir dir;
  t_User user("nonroot");
  ASSERT_TRUE(user.ok());
  // A run directory under /run that does not exist, as /run/fikit on a fresh boot.
  const std::string run = "/run/fikit-test-" + std::to_string(getpid());
  std::string out;
  EXPECT_EQ(t_run(t_start(run + "/broker.sock"), dir, &out, &user), 1) << out;
  EXPECT_NE(out.find("cannot create " + run +
                     ": run as root, or give --run-dir/--socket in a directory you own"),
            std::string::npos)
      << out;
  EXPECT_NE(access(run.c_str(), F_OK), 0);
}

// A user who owns the socket's directory plants symlinks to a root file at the lock and the
// log: the root broker refuses the directory, and the file is untouched.
TEST(OperatorStart, RefusesADirectoryAnotherUserCanWrite) {
  if (!t_can_make_users()) GTEST_SKIP() << "needs root and useradd";
  t_TempDir dir;
  t_User user("planter");
  ASSERT_TRUE(user.ok());
  const std::string victim = t_victim(dir);
  const std::string theirs = dir.file("theirs");
  ASSERT_EQ(mkdir(theirs.c_str(), 0755), 0);
  ASSERT_EQ(chown(theirs.c_str(), user.uid(), user.gid()), 0);
  ASSERT_EQ(symlink(victim.c_str(), (theirs + "/broker.sock.lock").c_str()), 0);
  ASSERT_EQ(symlink(victim.c_str(), (theirs + "/broker.log").c_str()), 0);
  std::string out;
  EXPECT_EQ(t_run(t_start(theirs + "/broker.sock"), dir, &out), 1) << out;
  EXPECT_NE(
      out.find("refusing to use " + theirs + ": it is owned by uid " + std::to_string(user.uid())),
      std::string::npos)
      << out;
  // The same with a directory of root's that everyone may write (no sticky bit).
  const std::string open_dir = dir.file("open");
  ASSERT_EQ(mkdir(open_dir.c_str(), 0755), 0);
  chmod(open_dir.c_str(), 0777);
  out.clear();
  EXPECT_EQ(t_run(t_start(open_dir + "/broker.sock", true), dir, &out), 1) << out;
  EXPECT_NE(out.find("writable by others (mode 0777)"), std::string::npos) << out;
  // And a profile directory of theirs.
  out.clear();
  std::vector<std::string> argv = t_start(dir.file("mine/broker.sock"), true);
  argv.insert(argv.end(), {"--profile-dir", theirs});
  EXPECT_EQ(t_run(argv, dir, &out), 1) << out;
  EXPECT_NE(out.find("refusing to use " + theirs), std::string::npos) << out;
  EXPECT_EQ(t_read_file(victim), "secret\n");
  EXPECT_EQ(t_mode(victim), 0600u);
}

// The second line of defence, in a directory the broker owns: a symlink at the lock or at the
// log (left there, say, by an earlier mistake) is refused, never followed.
TEST(OperatorStart, NeverWritesThroughASymlinkAtTheLockOrTheLog) {
  t_TempDir dir;
  const std::string victim = t_victim(dir);
  const std::string run = dir.file("run");
  ASSERT_EQ(mkdir(run.c_str(), 0755), 0);
  ASSERT_EQ(symlink(victim.c_str(), (run + "/broker.sock.lock").c_str()), 0);
  std::string out;
  EXPECT_EQ(t_run(t_start(run + "/broker.sock"), dir, &out), 1) << out;
  EXPECT_NE(out.find("refusing the lock file " + run + "/broker.sock.lock: it is a symlink"),
            std::string::npos)
      << out;
  unlink((run + "/broker.sock.lock").c_str());
  unlink((run + "/broker.log").c_str());  // the refused start above wrote it
  ASSERT_EQ(symlink(victim.c_str(), (run + "/broker.log").c_str()), 0);
  out.clear();
  EXPECT_EQ(t_run(t_start(run + "/broker.sock"), dir, &out), 1) << out;
  EXPECT_NE(out.find("refusing the log file " + run + "/broker.log"), std::string::npos) << out;
  EXPECT_EQ(t_read_file(victim), "secret\n");
  EXPECT_EQ(t_mode(victim), 0600u);
}

}  // namespace
}  // namespace fikit::test
