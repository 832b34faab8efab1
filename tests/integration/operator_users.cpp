#include "operator_users.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace fikit::test {
namespace {

// Run a command of the system (useradd, ...) quietly; return true if it exited 0.
bool t_system(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// A name of at most 32 bytes, unique to this process and call.
std::string t_unique(const std::string& tag) {
  static std::atomic<int> n{0};
  return "fkt-" + tag.substr(0, 8) + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

}  // namespace

bool t_can_make_users() {
  return geteuid() == 0 && access("/usr/sbin/useradd", X_OK) == 0 &&
         access("/usr/sbin/groupadd", X_OK) == 0;
}

t_Group::t_Group(const std::string& tag) : name_(t_unique(tag)) {
  if (!t_system({"groupadd", "--system", name_})) {
    ADD_FAILURE() << "groupadd " << name_ << " failed";
    return;
  }
  if (group* g = getgrnam(name_.c_str())) gid_ = g->gr_gid;
}

t_Group::~t_Group() {
  if (gid_ != 0) t_system({"groupdel", name_});
}

t_User::t_User(const std::string& tag, const std::vector<std::string>& groups)
    : name_(t_unique(tag)) {
  std::vector<std::string> argv = {"useradd", "--system",          "--no-create-home",
                                   "--shell", "/usr/sbin/nologin", "--user-group"};
  std::string list;
  for (const std::string& g : groups) list += (list.empty() ? "" : ",") + g;
  if (!list.empty()) argv.insert(argv.end(), {"--groups", list});
  argv.push_back(name_);
  if (!t_system(argv)) {
    ADD_FAILURE() << "useradd " << name_ << " failed";
    return;
  }
  if (passwd* pw = getpwnam(name_.c_str())) {
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }
}

t_User::~t_User() {
  if (uid_ != 0) t_system({"userdel", name_});
}

t_Proc t_spawn_as(const t_User& user, const std::vector<std::string>& argv, const Env& env,
                  const std::string& log_prefix) {
  return t_spawn(argv, env, log_prefix, [&user] {
    if (initgroups(user.name().c_str(), user.gid()) == 0 && setgid(user.gid()) == 0 &&
        setuid(user.uid()) == 0)
      return true;
    dprintf(2, "failed to become %s: %s\n", user.name().c_str(), strerror(errno));
    return false;
  });
}

int t_run(const std::vector<std::string>& argv, const t_TempDir& dir, std::string* out,
          const t_User* user) {
  static std::atomic<int> n{0};
  std::string prefix = dir.file("run" + std::to_string(n++));
  t_Proc p = user ? t_spawn_as(*user, argv, {}, prefix) : t_spawn(argv, {}, prefix);
  if (!t_wait(p, std::chrono::seconds(30))) {
    kill(p.pid, SIGKILL);
    t_wait(p, std::chrono::seconds(5));
    out->append("(timed out)\n");
  }
  out->append(t_read_file(p.out_path));
  out->append(t_read_file(p.err_path));
  return t_exit_code(p);
}

}  // namespace fikit::test
