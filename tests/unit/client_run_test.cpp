// tools/fikit-run: argument errors exit 2 and run nothing; a valid call execs the command with
// LD_PRELOAD, FIKIT_PRIORITY, FIKIT_TENANT and FIKIT_SOCKET set.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

class FikitRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* build = getenv("FIKIT_BUILD_DIR");
    if (!build) GTEST_SKIP() << "FIKIT_BUILD_DIR not set (run through ctest)";
    build_ = build;
    tool_ = build_ + "/bin/fikit-run";
    ASSERT_EQ(access(tool_.c_str(), X_OK), 0) << tool_;
    char tmpl[] = "/tmp/fikit-run-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    marker_ = dir_ + "/ran";
  }
  void TearDown() override {
    if (!dir_.empty()) {
      unlink(marker_.c_str());
      rmdir(dir_.c_str());
    }
  }

  // Run fikit-run with `args`, stdout/stderr into `output`. Return the exit status.
  int run(const std::vector<std::string>& args, std::string* output = nullptr) {
    std::string out_path = dir_ + "/out";
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv{const_cast<char*>(tool_.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(tool_.c_str(), argv.data());
      _exit(99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(out_path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (output) *output = ss.str();
    unlink(out_path.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  bool ran() { return access(marker_.c_str(), F_OK) == 0; }

  std::string build_, tool_, dir_, marker_;
};

TEST_F(FikitRun, UnknownPriorityRunsNothing) {
  std::string out;
  EXPECT_EQ(run({"--priority", "urgent", "--", "touch", marker_}, &out), 2);
  EXPECT_FALSE(ran());
  EXPECT_NE(out.find("unknown priority 'urgent'"), std::string::npos) << out;
  EXPECT_EQ(run({"--priority", "8", "--", "touch", marker_}), 2);
  EXPECT_EQ(run({"-p", "-1", "touch", marker_}), 2);
  EXPECT_FALSE(ran());
}

TEST_F(FikitRun, OtherArgumentErrorsRunNothing) {
  EXPECT_EQ(run({"--", "touch", marker_}), 2);  // no priority
  EXPECT_EQ(run({"--priority"}), 2);            // no value
  EXPECT_EQ(run({"--priority", "low"}), 2);     // no command
  EXPECT_EQ(run({"--frobnicate", "-p", "low", "--", "touch", marker_}), 2);
  EXPECT_EQ(run({"-p", "low", "--name", std::string(40, 'n'), "--", "touch", marker_}), 2);
  EXPECT_EQ(run({"-p", "low", "--socket", std::string(200, 's'), "--", "touch", marker_}), 2);
  EXPECT_EQ(run({"-p", "low", "--lib", dir_ + "/missing.so", "--", "touch", marker_}), 2);
  EXPECT_FALSE(ran());
}

TEST_F(FikitRun, HelpHasExamples) {
  std::string out;
  EXPECT_EQ(run({"--help"}, &out), 0);
  EXPECT_NE(out.find("EXAMPLES"), std::string::npos);
  EXPECT_NE(out.find("--priority"), std::string::npos);
}

TEST_F(FikitRun, ExecsTheCommandWithTheEnvironment) {
  std::string out;
  std::string script = "echo \"$LD_PRELOAD|$FIKIT_PRIORITY|$FIKIT_TENANT|$FIKIT_SOCKET\"";
  EXPECT_EQ(run({"--priority", "low", "--name", "trainer", "--socket", "/tmp/x.sock", "--", "sh",
                 "-c", script},
                &out),
            0)
      << out;
  char lib[PATH_MAX];
  ASSERT_NE(realpath((build_ + "/lib/libfikit.so").c_str(), lib), nullptr);
  EXPECT_EQ(out, std::string(lib) + "|low|trainer|/tmp/x.sock\n");
}

TEST_F(FikitRun, CommandOptionsAreLeftAlone) {
  std::string out;
  EXPECT_EQ(run({"-p", "2", "sh", "-c", "echo $FIKIT_PRIORITY; exit 3"}, &out), 3);
  EXPECT_EQ(out, "2\n");
  EXPECT_EQ(run({"-p", "high", "--", "/nonexistent/program"}, &out), 127);
}

}  // namespace
