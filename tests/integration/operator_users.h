// Real unprivileged users and groups for the operator tests (useradd/groupadd, removed on
// destruction), and processes run as them. Creating users needs root: t_can_make_users() says
// whether this run may (tests skip otherwise).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "harness.h"

namespace fikit::test {

bool t_can_make_users();

// A group made with groupadd, removed with groupdel.
class t_Group {
 public:
  explicit t_Group(const std::string& tag);
  ~t_Group();
  const std::string& name() const { return name_; }
  gid_t gid() const { return gid_; }

 private:
  std::string name_;
  gid_t gid_ = 0;
};

// A system user without a home or a shell, made with useradd (in `groups`, if any), removed with
// userdel.
class t_User {
 public:
  explicit t_User(const std::string& tag, const std::vector<std::string>& groups = {});
  ~t_User();
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  bool ok() const { return uid_ != 0; }

 private:
  std::string name_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// Start argv as `user` (its supplementary groups too), output captured like t_spawn's.
t_Proc t_spawn_as(const t_User& user, const std::vector<std::string>& argv, const Env& env,
                  const std::string& log_prefix);
// Run argv (as `user` if given, else as ourselves) to its end; return its exit code, with its
// stdout and stderr appended to *out.
int t_run(const std::vector<std::string>& argv, const t_TempDir& dir, std::string* out,
          const t_User* user = nullptr);

}  // namespace fikit::test
