// Profiles keyed by (uid, tenant name) (broker/policy/fikit/profile.h): one user cannot overwrite
// or read another's by taking its name; names that could escape the directory or are not UTF-8
// are refused and nothing is written; profile rm never follows a symlink.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "policy/fikit/fikit.h"
#include "policy/fikit/profile.h"

namespace fikit::broker {
namespace {

namespace fp = fikit_policy;

struct t_Dir {
  std::string path;
  t_Dir() {
    char tmpl[] = "/tmp/fikit-opprofile-test-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path = tmpl;
  }
  ~t_Dir() { std::filesystem::remove_all(path); }
};

// A tenant of `uid` named `name` that learned `seen` launches of one kernel.
fp::TenantData t_tenant(uint32_t uid, const std::string& name, uint64_t seen) {
  fp::FikitParams p;
  fp::TenantData td(1, name, 0, p);
  td.uid = uid;
  td.keys.touch(0xabc).seen = seen;
  return td;
}

// Every file below `root`, as paths relative to it.
std::vector<std::string> t_files(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root))
    if (!e.is_directory()) out.push_back(std::filesystem::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(OperatorProfile, TheSameNameOfTwoUsersIsTwoProfiles) {
  t_Dir d;
  const std::string dir = d.path + "/profiles";
  std::string err;
  ASSERT_TRUE(fp::profile_save(t_tenant(0, "ddp", 7), dir, &err)) << err;
  ASSERT_TRUE(fp::profile_save(t_tenant(1000, "ddp", 99), dir, &err)) << err;
  EXPECT_EQ(t_files(dir), (std::vector<std::string>{"ddp.json", "u1000/ddp.json"}));
  struct stat st;
  ASSERT_EQ(stat((dir + "/u1000").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  fp::FikitParams p;
  fp::TenantData root(2, "ddp", 0, p), user(3, "ddp", 0, p);
  user.uid = 1000;
  ASSERT_TRUE(fp::profile_load(&root, dir, &err)) << err;
  ASSERT_TRUE(fp::profile_load(&user, dir, &err)) << err;
  EXPECT_EQ(root.keys.find(0xabc)->seen, 7u) << "root's own, not the user's";
  EXPECT_EQ(user.keys.find(0xabc)->seen, 99u);
  fp::TenantData other(4, "ddp", 0, p);
  other.uid = 1001;
  EXPECT_FALSE(fp::profile_load(&other, dir, &err)) << "a third user has none";
  EXPECT_EQ(err, "");
  EXPECT_EQ(fikit_profile_list(dir), (std::vector<std::string>{"ddp", "ddp (uid 1000)"}));
}

TEST(OperatorProfile, NamesThatCouldEscapeOrAreNotUtf8AreRefused) {
  t_Dir d;
  const std::string dir = d.path + "/profiles";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  for (const std::string& bad :
       {std::string("../x"), std::string("/etc/passwd"), std::string("a/b"), std::string(".."),
        std::string(40, 'x'), std::string("caf\xe9"), std::string("\xff"), std::string("tab\there"),
        std::string("\xc0\xaf")}) {
    EXPECT_NE(fp::profile_name_problem(bad), "") << bad;
    std::string err;
    EXPECT_FALSE(fp::profile_save(t_tenant(0, bad, 1), dir, &err)) << bad;
    EXPECT_NE(err.find("no profile for tenant name"), std::string::npos) << err;
    EXPECT_FALSE(fikit_profile_import(dir, bad, "{}", &err)) << bad;
    EXPECT_NE(err.find("bad tenant name"), std::string::npos) << err;
  }
  EXPECT_TRUE(t_files(d.path).empty()) << "nothing written, inside or outside";
  for (const char* good : {"café", "serve v2", "serve_v2", "llama-3.1"})
    EXPECT_EQ(fp::profile_name_problem(good), "") << good;
  // Names that differ only in characters a file name cannot hold keep their own files.
  std::string err;
  ASSERT_TRUE(fp::profile_save(t_tenant(0, "serve v2", 1), dir, &err)) << err;
  ASSERT_TRUE(fp::profile_save(t_tenant(0, "serve_v2", 2), dir, &err)) << err;
  EXPECT_EQ(t_files(dir).size(), 2u);
}

TEST(OperatorProfile, RemoveNeverFollowsASymlink) {
  t_Dir d;
  const std::string dir = d.path + "/profiles";
  std::string err;
  ASSERT_TRUE(fp::profile_save(t_tenant(0, "serve", 1), dir, &err)) << err;
  ASSERT_TRUE(fikit_profile_remove(dir, "serve", &err)) << err;
  EXPECT_TRUE(t_files(dir).empty());
  EXPECT_FALSE(fikit_profile_remove(dir, "serve", &err));
  EXPECT_NE(err.find("no profile named 'serve'"), std::string::npos) << err;
  const std::string victim = d.path + "/victim";
  std::ofstream(victim) << "keep\n";
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/trap.json").c_str()), 0);
  ASSERT_TRUE(fikit_profile_remove(dir, "trap", &err)) << err;
  EXPECT_TRUE(std::filesystem::exists(victim));
}

}  // namespace
}  // namespace fikit::broker
