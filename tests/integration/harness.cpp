#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace fikit::test {

std::string t_build_dir() {
  const char* d = getenv("FIKIT_BUILD_DIR");
  return d ? d : "build";
}

std::string t_bin(const std::string& name) { return t_build_dir() + "/bin/" + name; }

t_TempDir::t_TempDir() {
  char tmpl[] = "/tmp/fikit-it-XXXXXX";
  char* p = mkdtemp(tmpl);
  if (!p) ADD_FAILURE() << "failed to create temp dir: " << strerror(errno);
  path_ = p ? p : "/tmp";
}

t_TempDir::~t_TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

t_Proc t_spawn(const std::vector<std::string>& argv, const Env& env, const std::string& log_prefix,
               const std::function<bool()>& in_child) {
  t_Proc p;
  p.out_path = log_prefix + ".out";
  p.err_path = log_prefix + ".err";
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << strerror(errno);
    return p;
  }
  if (pid == 0) {
    setpgid(0, 0);
    int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) _exit(126);
    dup2(out, 1);
    dup2(err, 2);
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (in_child && !in_child()) _exit(126);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    dprintf(2, "failed to exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  p.pid = pid;
  return p;
}

bool t_wait(t_Proc& p, std::chrono::milliseconds timeout) {
  if (p.pid <= 0) return true;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int st;
    pid_t r = waitpid(p.pid, &st, WNOHANG);
    if (r == p.pid) {
      p.status = st;
      p.pid = -1;
      return true;
    }
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int t_exit_code(const t_Proc& p) {
  if (WIFEXITED(p.status)) return WEXITSTATUS(p.status);
  if (WIFSIGNALED(p.status)) return 128 + WTERMSIG(p.status);
  return -1;
}

std::string t_read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool t_eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::map<std::string, std::string> t_kv(const std::string& output) {
  std::map<std::string, std::string> kv;
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line))
    if (line.find('=') != std::string::npos) last = line;
  std::istringstream words(last);
  std::string w;
  while (words >> w) {
    auto eq = w.find('=');
    if (eq != std::string::npos) kv[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return kv;
}

static std::atomic<int> g_sim_counter{0};

t_SimGpu::t_SimGpu(const t_TempDir& dir) {
  name = "/fikit-it-" + std::to_string(getpid()) + "-" + std::to_string(g_sim_counter++);
  trace_prefix = dir.file("trace");
}

t_SimGpu::~t_SimGpu() {
  shm_unlink(name.c_str());
  for (int k = 1; k < devices; k++) shm_unlink((name + "-" + std::to_string(k)).c_str());
}

Env t_SimGpu::env() const {
  return {{"LD_LIBRARY_PATH", t_build_dir() + "/sim"},
          {"FIKIT_SIM_GPU", name},
          {"FIKIT_SIM_TRACE", trace_prefix},
          {"FIKIT_SIM_MODE", mode},
          {"FIKIT_SIM_DEVICES", std::to_string(devices)}};
}

bool t_socket_accepts(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

std::vector<int> t_silent_connections(const std::string& path, int n) {
  std::vector<int> fds;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  for (int i = 0; i < n; i++) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0)
      fds.push_back(fd);
    else
      close(fd);
  }
  return fds;
}

t_Broker::t_Broker(const t_TempDir& dir, const std::string& policy,
                   const std::vector<std::string>& extra, const Env& env) {
  socket_ = dir.file("broker.sock");
  std::vector<std::string> argv = {
      t_bin("fikit-broker"), "start", "--foreground", "--socket", socket_, "--policy", policy};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // Learned profiles stay in the test's directory, never in the system's default.
  if (std::find(extra.begin(), extra.end(), "--profile-dir") == extra.end())
    argv.insert(argv.end(), {"--profile-dir", dir.file("profiles")});
  static std::atomic<int> n{0};
  proc_ = t_spawn(argv, env, dir.file("broker" + std::to_string(n++)));
  bool up = t_eventually(
      [&] {
        if (t_wait(proc_, std::chrono::milliseconds(0))) return true;  // exited: give up
        return t_socket_accepts(socket_);
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(up && proc_.pid > 0) << "broker did not come up: " << t_read_file(proc_.err_path);
}

t_Broker::~t_Broker() {
  if (proc_.pid <= 0) return;
  kill(proc_.pid, SIGTERM);
  if (!t_wait(proc_, std::chrono::seconds(10))) {
    ADD_FAILURE() << "broker did not stop on SIGTERM";
    kill(proc_.pid, SIGKILL);
    t_wait(proc_, std::chrono::seconds(5));
  }
}

std::string t_Broker::status_json() const {
  t_TempDir d;
  t_Proc p =
      t_spawn({t_bin("fikit-broker"), "status", "--socket", socket_, "--json"}, {}, d.file("st"));
  if (!t_wait(p, std::chrono::seconds(10)) || t_exit_code(p) != 0) return "";
  return t_read_file(p.out_path);
}

void t_Broker::kill9() {
  if (proc_.pid <= 0) return;
  kill(proc_.pid, SIGKILL);
  t_wait(proc_, std::chrono::seconds(5));
}

std::map<int, std::vector<uint64_t>> t_trace_tags(const std::string& trace_file,
                                                  const std::string& kernel) {
  std::map<int, std::vector<uint64_t>> tags;
  std::ifstream f(trace_file);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream w(line);
    int stream;
    std::string name;
    uint64_t tag;
    if (!(w >> stream >> name >> tag)) continue;
    if (name == kernel) tags[stream].push_back(tag);
  }
  return tags;
}

std::vector<std::string> t_trace_files(const std::string& prefix) {
  std::vector<std::string> files;
  std::filesystem::path p(prefix);
  std::string stem = p.filename().string() + ".";
  for (auto& e : std::filesystem::directory_iterator(p.parent_path()))
    if (e.path().filename().string().rfind(stem, 0) == 0) files.push_back(e.path().string());
  return files;
}

}  // namespace fikit::test
