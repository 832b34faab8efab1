// Files the broker writes as root in directories from its command line (broker/base/safe_fs.h): the
// directory rules (owner, modes, symlinks on the way), files never opened through a symlink or a
// hard link, modes set on the fd, and profiles written atomically beside a planted symlink. The
// tests of other owners need root (they chown to nobody); they skip otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/safe_fs.h"
#include "policy/fikit/profile.h"

namespace fikit::broker {
namespace {

constexpr uid_t kNobody = 65534;

struct t_Dir {
  std::string path;
  t_Dir() {
    char tmpl[] = "/tmp/fikit-safefs-test-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path = tmpl;
  }
  ~t_Dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& n) const { return path + "/" + n; }
};

std::string t_read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t t_mode(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// A file only root may read, standing for /etc/shadow: what a planted symlink points at.
std::string t_victim(const t_Dir& d) {
  std::string v = d.file("victim");
  std::ofstream(v) << "secret\n";
  chmod(v.c_str(), 0600);
  return v;
}

TEST(SafeFs, CreatesMissingDirectoriesWithTheirModes) {
  t_Dir d;
  const std::string dir = d.file("state/fikit/profiles");
  mode_t old = umask(077);  // the mode is set on the fd, whatever the umask
  Result<DirFd> fd = open_owned_dir(dir, {.create = true, .mode = 0700, .hint = ""});
  umask(old);
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  EXPECT_EQ(t_mode(dir), 0700u);
  EXPECT_EQ(t_mode(d.file("state/fikit")), 0755u);
  EXPECT_EQ(t_mode(d.file("state")), 0755u);
}

TEST(SafeFs, RefusesADirectoryWritableByOthers) {
  t_Dir d;
  ASSERT_EQ(mkdir(d.file("open").c_str(), 0755), 0);
  chmod(d.file("open").c_str(), 0777);
  Result<DirFd> fd = open_owned_dir(d.file("open"), {.create = false, .mode = 0755, .hint = ""});
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(fd.status().message().find("writable by others (mode 0777)"), std::string::npos)
      << fd.status().message();
  // Below it too: another user could rename what is in it.
  ASSERT_EQ(mkdir(d.file("open/sub").c_str(), 0700), 0);
  EXPECT_FALSE(
      open_owned_dir(d.file("open/sub"), {.create = false, .mode = 0700, .hint = ""}).ok());
}

TEST(SafeFs, FollowsOnlyTrustedSymlinks) {
  t_Dir d;
  ASSERT_EQ(mkdir(d.file("real").c_str(), 0700), 0);
  ASSERT_EQ(symlink(d.file("real").c_str(), d.file("link").c_str()), 0);
  EXPECT_TRUE(open_owned_dir(d.file("link"), {.create = false, .mode = 0700, .hint = ""}).ok())
      << "a symlink of the broker's own uid is followed (like /var/run -> /run)";
  if (geteuid() != 0) GTEST_SKIP() << "the other-owner cases need root";
  ASSERT_EQ(lchown(d.file("link").c_str(), kNobody, kNobody), 0);
  Result<DirFd> fd = open_owned_dir(d.file("link"), {.create = false, .mode = 0700, .hint = ""});
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("symlink owned by uid 65534"), std::string::npos)
      << fd.status().message();
}

TEST(SafeFs, RefusesADirectoryOfAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  t_Dir d;
  ASSERT_EQ(mkdir(d.file("theirs").c_str(), 0700), 0);
  ASSERT_EQ(chown(d.file("theirs").c_str(), kNobody, kNobody), 0);
  Result<DirFd> fd = open_owned_dir(d.file("theirs"), {.create = false, .mode = 0700, .hint = ""});
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("owned by uid 65534"), std::string::npos)
      << fd.status().message();
  // A directory of theirs on the way is refused as well.
  ASSERT_EQ(mkdir(d.file("theirs/mine").c_str(), 0700), 0);
  EXPECT_FALSE(
      open_owned_dir(d.file("theirs/mine"), {.create = false, .mode = 0700, .hint = ""}).ok());
}

TEST(SafeFs, TheCreateHintSaysWhatToDo) {
  if (geteuid() == 0) GTEST_SKIP() << "root may create anything";
  Result<DirFd> fd =
      open_owned_dir("/proc/fikit-nope", {.create = true, .mode = 0755, .hint = "do this"});
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("cannot create /proc/fikit-nope: do this"),
            std::string::npos)
      << fd.status().message();
}

TEST(SafeFs, OpenOwnedFileRefusesSymlinksAndHardLinks) {
  t_Dir d;
  const std::string victim = t_victim(d);
  ASSERT_EQ(mkdir(d.file("run").c_str(), 0755), 0);
  ASSERT_EQ(symlink(victim.c_str(), d.file("run/broker.log").c_str()), 0);
  ASSERT_EQ(link(victim.c_str(), d.file("run/broker.sock.lock").c_str()), 0);
  Result<DirFd> dir = open_owned_dir(d.file("run"), {.create = false, .mode = 0755, .hint = ""});
  ASSERT_TRUE(dir.ok()) << dir.status().message();
  EXPECT_EQ(open_owned_file(*dir, "broker.log", O_WRONLY | O_APPEND, 0640), -ELOOP);
  EXPECT_EQ(open_owned_file(*dir, "broker.sock.lock", O_RDWR, 0644), -EPERM);
  EXPECT_EQ(t_read(victim), "secret\n");
  EXPECT_EQ(t_mode(victim), 0600u) << "no mode was set through a link";
  int fd = open_owned_file(*dir, "new.log", O_WRONLY | O_APPEND, 0640);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(t_mode(d.file("run/new.log")), 0640u);
}

TEST(SafeFs, AtomicWriteReplacesAPlantedSymlinkInsteadOfFollowingIt) {
  t_Dir d;
  const std::string victim = t_victim(d);
  ASSERT_EQ(mkdir(d.file("p").c_str(), 0700), 0);
  ASSERT_EQ(symlink(victim.c_str(), d.file("p/serve.json").c_str()), 0);
  Result<DirFd> dir = open_owned_dir(d.file("p"), {.create = false, .mode = 0700, .hint = ""});
  ASSERT_TRUE(dir.ok());
  std::string err;
  ASSERT_TRUE(write_file_atomic(*dir, d.file("p"), "serve.json", "new\n", 0600, &err)) << err;
  EXPECT_EQ(t_read(victim), "secret\n");
  struct stat st;
  ASSERT_EQ(lstat(d.file("p/serve.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(t_read(d.file("p/serve.json")), "new\n");
  std::string text;
  ASSERT_EQ(symlink(victim.c_str(), d.file("p/other.json").c_str()), 0);
  EXPECT_EQ(read_file_nofollow(d.file("p/other.json"), &text), -ELOOP);
}

TEST(SafeFs, ProfilesAreWrittenPrivatelyAndNeverThroughASymlink) {
  t_Dir d;
  const std::string victim = t_victim(d);
  const std::string dir = d.file("profiles");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  namespace fp = fikit_policy;
  fp::FikitParams p;
  fp::TenantData td(1, "serve", 0, p);
  td.keys.touch(0x1234).seen = 3;
  const std::string path = fp::profile_path(dir, "serve");
  ASSERT_EQ(symlink(victim.c_str(), path.c_str()), 0);
  std::string err;
  fp::TenantData probe(2, "serve", 0, p);
  EXPECT_FALSE(fp::profile_load(&probe, dir, &err)) << "a symlink is not read through";
  ASSERT_TRUE(fp::profile_save(td, dir, &err)) << err;
  EXPECT_EQ(t_read(victim), "secret\n");
  EXPECT_EQ(t_mode(path), 0600u);
  fp::TenantData back(2, "serve", 0, p);
  EXPECT_TRUE(fp::profile_load(&back, dir, &err)) << err;
  if (geteuid() != 0) return;
  // A profile directory another user can write is refused, and nothing is written in it.
  ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);
  EXPECT_FALSE(fp::profile_save(td, dir, &err));
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
}

}  // namespace
}  // namespace fikit::broker
