// fikit-broker's command line (broker/options.h): the configuration file and the command line
// over it, --version, --log-level, a help text per command, and every flag the tests, the
// benchmarks and the tools pass.
#include <fikit/abi.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "options.h"

namespace fikit::broker {
namespace {

Result<Options> t_parse(std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("fikit-broker")};
  for (std::string& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

struct t_Conf {
  std::string path;
  explicit t_Conf(const std::string& text) {
    char tmpl[] = "/tmp/fikit-conf-test-XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    close(fd);
    path = tmpl;
    std::ofstream(path) << text;
  }
  ~t_Conf() { std::filesystem::remove(path); }
};

TEST(OperatorOptions, ConfigFileGivesStartsOptionsAndTheCommandLineWins) {
  t_Conf conf(
      "log-level = warn\n"
      "[start]\n"
      "policy = none\n"
      "margin-us = 7\n"
      "no-bpf = true\n"
      "socket = /tmp/conf.sock\n");
  Result<Options> o = t_parse({"start", "--config", conf.path});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy, "none");
  EXPECT_EQ(o->policy_cfg.margin_ns, 7000u);
  EXPECT_FALSE(o->gpu.enabled);
  EXPECT_EQ(o->socket, "/tmp/conf.sock");
  EXPECT_EQ(o->log_level, LogLevel::kWarn);
  o = t_parse({"start", "--config", conf.path, "--policy", "priority", "--margin-us", "9"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy, "priority") << "the command line wins";
  EXPECT_EQ(o->policy_cfg.margin_ns, 9000u);
  // Values from the file are checked like the command line's.
  t_Conf bad("[start]\nmargin-us = lots\n");
  o = t_parse({"start", "--config", bad.path});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("--margin-us wants a number"), std::string::npos)
      << o.status().message();
  t_Conf typo("[start]\npolcy = none\n");
  EXPECT_FALSE(t_parse({"start", "--config", typo.path}).ok()) << "an unknown key is an error";
  o = t_parse({"start", "--config", "/nonexistent/broker.conf"});
  EXPECT_FALSE(o.ok()) << "a named file must exist";
}

TEST(OperatorOptions, VersionAndLogLevel) {
  Result<Options> o = t_parse({"--version"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->command, Command::kHelp);
  EXPECT_EQ(o->help_text.rfind("fikit-broker 0.", 0), 0u) << o->help_text;
  EXPECT_NE(o->help_text.find("(ABI " + std::to_string(fikit::kAbiMajor) + "."), std::string::npos)
      << o->help_text;
  EXPECT_NE(o->help_text.find(", commit "), std::string::npos) << o->help_text;
  for (const char* cmd : {"start", "stop", "status"}) {
    o = t_parse({cmd, "--log-level", "debug"});
    ASSERT_TRUE(o.ok()) << cmd << ": " << o.status().message();
    EXPECT_EQ(o->log_level, LogLevel::kDebug);
  }
  o = t_parse({"status", "--log-level", "loud"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("unknown log level 'loud'"), std::string::npos);
}

TEST(OperatorOptions, EachCommandHasItsOwnHelpWithExamples) {
  for (const char* cmd : {"start", "stop", "status"}) {
    Result<Options> o = t_parse({cmd, "--help"});
    ASSERT_TRUE(o.ok()) << cmd;
    EXPECT_EQ(o->command, Command::kHelp);
    EXPECT_NE(o->help_text.find(std::string("fikit-broker ") + cmd), std::string::npos)
        << o->help_text;
    EXPECT_NE(o->help_text.find("EXAMPLES"), std::string::npos) << o->help_text;
    EXPECT_EQ(o->help_text.find("usage: fikit-broker start"), std::string::npos)
        << "not the whole manual";
  }
  Result<Options> o = t_parse({"status", "--help"});
  EXPECT_EQ(o->help_text.find("--policy"), std::string::npos) << "start's options are start's";
  o = t_parse({"profile", "show", "--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_NE(o->help_text.find("fikit-broker profile show"), std::string::npos) << o->help_text;
  for (const char* top : {"--help", "-h", "help"}) {
    o = t_parse({top});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->help_text, usage_text()) << "the top level's help is the whole manual";
  }
  for (const char* cmd : {"start", "stop", "status"}) {
    o = t_parse({cmd, "--help"});
    size_t start = 0;
    const std::string& h = o->help_text;
    while (start < h.size()) {
      size_t end = h.find('\n', start);
      if (end == std::string::npos) end = h.size();
      EXPECT_LE(end - start, 80u) << h.substr(start, end - start);
      start = end + 1;
    }
  }
}

// The flags the tests, benchmarks and tools pass (grep for fikit-broker there).
TEST(OperatorOptions, EveryExistingFlagStillWorks) {
  const std::vector<std::vector<std::string>> lines = {
      {"start", "--foreground", "--socket", "/tmp/a.sock", "--policy", "fikit", "--log",
       "/tmp/b.log", "--substrate", "mps", "--switch-cost-us", "0", "--profile-dir", "/tmp/p"},
      {"start", "-f", "-s", "/tmp/a.sock", "-p", "none", "-l", "/tmp/l", "-r", "/tmp/r"},
      {"start", "--margin-us", "20", "--max-lp-in-flight", "4", "--spin-us", "0",
       "--hp-marker-every", "32", "--no-bpf", "--policy-opts", "gap_quantile=0.05"},
      {"start", "--calibrate", "--substrate", "timeslice", "--audit-launches", "--bpf-btf", "/x"},
      {"start", "--socket=/tmp/a.sock", "--policy=none"},
      {"stop", "--socket", "/tmp/a.sock"},
      {"stop", "-s", "/tmp/a.sock"},
      {"status", "-s", "/tmp/a.sock", "-j"},
      {"status", "--socket", "/tmp/a.sock", "--json"},
      {"profile", "import", "serve", "--file", "x.json", "--profile-dir", "/tmp/p"},
      {"profile", "list", "--profile-dir=/tmp/q"},
  };
  Result<Options> rm = t_parse({"profile", "rm", "serve", "--uid", "1000", "--profile-dir", "/p"});
  ASSERT_TRUE(rm.ok()) << rm.status().message();
  EXPECT_EQ(rm->profile_action, "rm");
  EXPECT_EQ(rm->profile_uid, 1000u);
  rm = t_parse({"profile", "show", "serve"});
  ASSERT_TRUE(rm.ok());
  EXPECT_EQ(rm->profile_uid, getuid()) << "one's own profiles by default";
  Result<Options> last = t_parse({"start", "-p", "none", "--policy", "priority"});
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(last->policy, "priority") << "as with getopt, the last one wins";
  for (const auto& l : lines) {
    Result<Options> o = t_parse(l);
    std::string joined;
    for (const std::string& w : l) joined += w + " ";
    EXPECT_TRUE(o.ok()) << joined << ": " << o.status().message();
  }
}

}  // namespace
}  // namespace fikit::broker
