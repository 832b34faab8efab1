#include "profile_command.h"

#include <unistd.h>

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

Status usage_error(const std::string& what) { return Status(StatusCode::kInvalidArgument, what); }

std::string absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (!getcwd(cwd, sizeof(cwd))) return path;
  return std::string(cwd) + "/" + path;
}

// Take the value of option `name` from "--name VALUE" or "--name=VALUE" at argv[*i].
bool take_value(const std::string& arg, const char* name, int argc, char** argv, int* i,
                std::string* out, Status* err) {
  std::string flag = std::string("--") + name;
  if (arg.rfind(flag + "=", 0) == 0) {
    *out = arg.substr(flag.size() + 1);
    return true;
  }
  if (arg != flag) return false;
  if (*i + 1 >= argc)
    *err = usage_error("missing value for " + flag);
  else
    *out = argv[++*i];
  return true;
}

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
  if (!fikit_profile_export(o.policy_cfg.profile_dir, o.profile_name, &json, &err))
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
  if (!fikit_profile_import(o.policy_cfg.profile_dir, o.profile_name, text.str(), &err))
    return fail(err);
  fprintf(stderr,
          "fikit-broker: profile of '%s' installed in %s; a tenant of that name loads it when it "
          "next registers (one running now overwrites it when it leaves)\n",
          o.profile_name.c_str(), o.policy_cfg.profile_dir.c_str());
  return 0;
}

}  // namespace

Result<Options> parse_profile_options(int argc, char** argv, Options o) {
  o.command = Command::kProfile;
  std::vector<std::string> words;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    Status err;
    if (a == "-h" || a == "--help") {
      o.command = Command::kHelp;
      return o;
    }
    if (take_value(a, "profile-dir", argc, argv, &i, &o.policy_cfg.profile_dir, &err) ||
        take_value(a, "file", argc, argv, &i, &o.profile_file, &err)) {
      if (!err.ok()) return err;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') return usage_error("unknown option " + a + " for profile");
    words.push_back(a);
  }
  if (words.empty()) return usage_error("profile wants an action: list, show, export or import");
  o.profile_action = words[0];
  bool named = o.profile_action != "list";
  if (o.profile_action != "list" && o.profile_action != "show" && o.profile_action != "export" &&
      o.profile_action != "import")
    return usage_error("unknown profile action '" + o.profile_action +
                       "': use list, show, export or import");
  if (named && words.size() < 2) return usage_error("profile " + o.profile_action + " wants NAME");
  if (words.size() > (named ? 2u : 1u))
    return usage_error("unexpected argument '" + words.back() + "'");
  if (named) o.profile_name = words[1];
  if (!o.profile_file.empty() && o.profile_action != "export" && o.profile_action != "import")
    return usage_error("--file applies to profile export and import only");
  if (o.policy_cfg.profile_dir.empty()) return usage_error("--profile-dir wants a directory");
  o.policy_cfg.profile_dir = absolute(o.policy_cfg.profile_dir);
  return o;
}

int profile_command(const Options& o) {
  if (o.profile_action == "list") return list(o);
  if (o.profile_action == "export") return export_profile(o);
  if (o.profile_action == "import") return import_profile(o);
  std::string out, err;
  if (!fikit_profile_show(o.policy_cfg.profile_dir, o.profile_name, &out, &err)) return fail(err);
  fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace fikit::broker
