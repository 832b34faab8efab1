// Who may claim which priority, stop the broker and see whose tenants, with real unprivileged
// users and groups (useradd/groupadd, removed afterwards) against a root broker: a user asking
// more than its ceiling is admitted at it and told why (or refused), a member of the HP group gets
// high, stop is for admins, status shows others' tenants to admins only, and the socket belongs
// to the tenants' group. Needs root; skips otherwise.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "harness.h"
#include "operator_users.h"
#include "raw_tenant.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using nlohmann::json;

// Run `fn` in a child process as `user`; return what it returned (or why it could not run).
std::string t_as(const t_User& user, const std::function<std::string()>& fn) {
  int p[2];
  if (pipe(p) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    std::string out = "failed to become " + user.name();
    if (initgroups(user.name().c_str(), user.gid()) == 0 && setgid(user.gid()) == 0 &&
        setuid(user.uid()) == 0)
      out = fn();
    ssize_t n = write(p[1], out.data(), out.size());
    (void)n;
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return out;
}

// Register as `user` asking `priority`: "granted=<level> note=<text>" or "refused: <why>".
std::string t_register_as(const t_User& user, const std::string& socket, uint32_t priority) {
  return t_as(user, [&] {
    RawTenant t;
    if (!t.connect_and_register(socket, priority, "access-test")) return t.error();
    return "granted=" + std::to_string(t.segment()->hdr.priority) +
           " note=" + std::string(t.reply().error);
  });
}

class OperatorAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!t_can_make_users()) GTEST_SKIP() << "needs root, useradd and groupadd";
    chmod(dir_.path().c_str(), 0755);  // the users reach the socket; only root may write
  }
  // A root broker whose HP and admin groups are the test's own.
  std::unique_ptr<t_Broker> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"--no-bpf",    "--switch-cost-us", "0",
                                     "--hp-group",  hp_.name(),         "--admin-group",
                                     admin_.name(), "--tenant-group",   ""};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<t_Broker>(dir_, "none", argv);
  }
  t_TempDir dir_;
  t_Group hp_{"hp"}, admin_{"admin"};
};

TEST_F(OperatorAccess, AUserAskingHighIsAdmittedAtNormalAndTold) {
  t_User plain("plain");
  t_User member("hpmember", {hp_.name()});
  auto broker = start();
  ASSERT_TRUE(broker->running());
  std::string r = t_register_as(plain, broker->socket(), kPriorityHigh);
  EXPECT_EQ(r.rfind("granted=1 note=admitted at priority normal", 0), 0u) << r;
  EXPECT_NE(r.find("may claim priority normal at most, not high"), std::string::npos) << r;
  r = t_register_as(plain, broker->socket(), kPriorityLow);
  EXPECT_EQ(r, "granted=2 note=") << "at or below the ceiling: as asked";
  r = t_register_as(member, broker->socket(), kPriorityHigh);
  EXPECT_EQ(r, "granted=0 note=") << "a member of the HP group may claim high";
}

TEST_F(OperatorAccess, OverTheCeilingIsRefusedWhenConfigured) {
  t_User plain("refused");
  auto broker = start({"--over-ceiling", "refuse"});
  ASSERT_TRUE(broker->running());
  std::string r = t_register_as(plain, broker->socket(), kPriorityHigh);
  EXPECT_NE(r.find("registration refused: refused: uid " + std::to_string(plain.uid())),
            std::string::npos)
      << r;
}

TEST_F(OperatorAccess, CeilingRulesByUserAndGroup) {
  t_User low("lowuser");
  t_Group trusted("trusted");
  t_User member("trustee", {trusted.name()});
  auto broker = start({"--priority-ceiling", "user:" + low.name() + "=low", "--priority-ceiling",
                       "group:" + trusted.name() + "=high"});
  ASSERT_TRUE(broker->running());
  EXPECT_EQ(t_register_as(low, broker->socket(), 1).rfind("granted=2 note=admitted", 0), 0u);
  EXPECT_EQ(t_register_as(member, broker->socket(), 0), "granted=0 note=");
}

TEST_F(OperatorAccess, StopIsForAdmins) {
  t_User plain("stopper");
  t_User admin("admin", {admin_.name()});
  auto broker = start();
  ASSERT_TRUE(broker->running());
  std::string out;
  EXPECT_EQ(
      t_run({t_bin("fikit-broker"), "stop", "--socket", broker->socket()}, dir_, &out, &plain), 1);
  EXPECT_NE(out.find("stop refused: uid " + std::to_string(plain.uid()) +
                     " is not root, the broker's uid 0 or in group " + admin_.name()),
            std::string::npos)
      << out;
  out.clear();
  EXPECT_EQ(
      t_run({t_bin("fikit-broker"), "stop", "--socket", broker->socket()}, dir_, &out, &admin), 0)
      << out;
  EXPECT_TRUE(t_wait(broker->proc(), std::chrono::seconds(10))) << "an admin stopped it";
}

TEST_F(OperatorAccess, StatusShowsOthersTenantsToAdminsOnly) {
  t_User plain("viewer");
  t_User admin("viewadm", {admin_.name()});
  auto broker = start();
  ASSERT_TRUE(broker->running());
  RawTenant root_tenant;
  ASSERT_TRUE(root_tenant.connect_and_register(broker->socket(), kPriorityHigh, "root-tenant"))
      << root_tenant.error();
  const std::string socket = broker->socket();
  std::string seen = t_as(plain, [&] {
    RawTenant mine;
    if (!mine.connect_and_register(socket, kPriorityLow, "mine")) return mine.error();
    return t_status(socket).dump();
  });
  json doc = json::parse(seen, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << seen;
  ASSERT_EQ(doc["tenants"].size(), 1u) << seen;
  EXPECT_EQ(doc["tenants"][0]["name"], "mine");
  EXPECT_EQ(doc["tenants_of_others"], 1);
  EXPECT_EQ(doc["broker"]["tenants"], 2) << "the totals stay";
  seen = t_as(admin, [&] { return t_status(socket).dump(); });
  doc = json::parse(seen, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << seen;
  EXPECT_EQ(doc["tenants"].size(), 1u) << "an admin sees root's tenant (the viewer's left)";
  EXPECT_FALSE(doc.contains("tenants_of_others"));
}

TEST_F(OperatorAccess, TheSocketBelongsToTheTenantsGroup) {
  t_Group tenants("tenants");
  t_User member("tenant", {tenants.name()});
  t_User outsider("outsider");
  auto broker = start({"--tenant-group", tenants.name()});
  ASSERT_TRUE(broker->running());
  struct stat st;
  ASSERT_EQ(stat(broker->socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, tenants.gid());
  EXPECT_EQ(t_register_as(member, broker->socket(), kPriorityLow), "granted=2 note=");
  std::string r = t_register_as(outsider, broker->socket(), kPriorityLow);
  EXPECT_NE(r.find("Permission denied"), std::string::npos) << r;
}

}  // namespace
}  // namespace fikit::test
