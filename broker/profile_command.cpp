#include "profile_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "policy/fikit/fikit.h"

namespace fikit::broker {
namespace {

int fail(const std::string& what) {
  fprintf(stderr, "fikit-broker: %s\n", what.c_str());
  return 1;
}

int list(const Options& o) {
  const std::string& dir = o.policy_cfg.profile_dir;
  std::vector<std::string> names = fikit_profile_list(dir);
  if (names.empty()) {
    fprintf(stderr, "fikit-broker: no profiles in %s\n", dir.c_str());
    return 0;
  }
  for (const std::string& n : names) printf("%s\n", n.c_str());
  return 0;
}

int export_profile(const Options& o) {
  std::string json, err;
  if (!fikit_profile_export(o.policy_cfg.profile_dir, o.profile_name, &json, &err, o.profile_uid))
    return fail(err);
  if (o.profile_file.empty() || o.profile_file == "-") {
    fputs(json.c_str(), stdout);
    if (!json.empty() && json.back() != '\n') fputc('\n', stdout);
    return 0;
  }
  std::ofstream out(o.profile_file, std::ios::binary | std::ios::trunc);
  if (!(out << json) || !out.flush())
    return fail("failed to write " + o.profile_file + ": " + strerror(errno));
  fprintf(stderr, "fikit-broker: profile of '%s' written to %s\n", o.profile_name.c_str(),
          o.profile_file.c_str());
  return 0;
}

int import_profile(const Options& o) {
  std::ostringstream text;
  if (o.profile_file.empty() || o.profile_file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(o.profile_file, std::ios::binary);
    if (!in) return fail("failed to read " + o.profile_file + ": " + strerror(errno));
    text << in.rdbuf();
  }
  std::string err;
  if (!fikit_profile_import(o.policy_cfg.profile_dir, o.profile_name, text.str(), &err,
                            o.profile_uid))
    return fail(err);
  fprintf(stderr,
          "fikit-broker: profile of '%s' installed in %s; a tenant of that name loads it when it "
          "next registers (one running now overwrites it when it leaves)\n",
          o.profile_name.c_str(), o.policy_cfg.profile_dir.c_str());
  return 0;
}

}  // namespace

int profile_command(const Options& o) {
  if (o.profile_action == "list") return list(o);
  if (o.profile_action == "export") return export_profile(o);
  if (o.profile_action == "import") return import_profile(o);
  std::string out, err;
  if (o.profile_action == "rm") {
    if (!fikit_profile_remove(o.policy_cfg.profile_dir, o.profile_name, &err, o.profile_uid))
      return fail(err);
    fprintf(stderr, "fikit-broker: profile of '%s' removed\n", o.profile_name.c_str());
    return 0;
  }
  if (!fikit_profile_show(o.policy_cfg.profile_dir, o.profile_name, &out, &err, o.profile_uid))
    return fail(err);
  fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace fikit::broker
