// Helpers of the BPF tests: skip (exit 77) where BPF cannot run, a test character device, a child
// process stepped over pipes, and pumping the observer's events until a condition holds.
#pragma once

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "observer.h"

namespace t {

inline constexpr auto kDeadline = std::chrono::seconds(20);  // generous: shared 2-core machines

// Path of a file of the build tree: under $FIKIT_BUILD_DIR (set by ctest, or by hand where the
// tree was copied, e.g. to a GPU machine), else where CMake built it.
inline std::string build_file(const std::string& rel) {
  const char* dir = getenv("FIKIT_BUILD_DIR");
  return std::string(dir && *dir ? dir : FIKIT_BPF_BUILD_DIR) + "/" + rel;
}

// Exit 77 (ctest: skipped) unless this process may load BPF programs: root, kernel BTF and the
// bpf() system call. A program that fails to load where these hold is a test failure, not a skip.
class BpfEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* why = nullptr;
    if (geteuid() != 0)
      why = "not root";
    else if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
      why = "kernel without BTF";
    else if (int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fikit_probe", 4, 4, 1, nullptr); fd < 0)
      why = "bpf() not available";
    else
      close(fd);
    if (why) {
      std::fprintf(stderr, "skipping BPF tests: %s\n", why);
      std::exit(77);
    }
  }
};

// A character device node with /dev/null's numbers in a temporary directory: harmless ioctls
// (ENOTTY) that the observer is told to decode as the NVIDIA driver.
// With `minor` 5 or 7, /dev/zero's or /dev/full's numbers (as harmless), for the test GPUs.
class TestDevice {
 public:
  explicit TestDevice(unsigned minor = 3) : minor_(minor) {
    const std::string fallback = minor == 5 ? "/dev/zero" : minor == 7 ? "/dev/full" : "/dev/null";
    char tmpl[] = "/tmp/fikit-bpf-XXXXXX";
    if (mkdtemp(tmpl)) dir_ = tmpl;
    path_ = dir_ + "/nvidia-test";
    if (dir_.empty() || mknod(path_.c_str(), S_IFCHR | 0600, makedev(1, minor)) != 0)
      path_ = fallback;  // e.g. a nodev /tmp: same numbers, same effect
  }
  ~TestDevice() {
    if (path_.rfind("/dev/", 0) != 0) unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  fikit::bpf::DeviceId id() const { return {1, minor_}; }

 private:
  unsigned minor_;
  std::string dir_;
  std::string path_;
};

// A child process running `argv`, with its stdin and stdout on pipes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (to_child_ >= 0) close(to_child_);
    if (from_child_ >= 0) close(from_child_);
  }
  pid_t pid() const { return pid_; }

  // Return the child's next line (without the newline), or "" on EOF or after the deadline.
  std::string read_line() {
    const auto end = std::chrono::steady_clock::now() + kDeadline;
    std::string line;
    char c;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{from_child_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      if (read(from_child_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }
  void go() { (void)!write(to_child_, "go\n", 3); }
  // Return everything the child writes until it closes stdout (or the deadline passes).
  std::string read_all() {
    const auto end = std::chrono::steady_clock::now() + kDeadline;
    std::string out;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{from_child_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = read(from_child_, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Wait for the child to exit; return its wait status.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int to_child_ = -1;
  int from_child_ = -1;
};

// Consume the observer's events until `done()` holds or the deadline passes; return done().
inline bool pump(fikit::bpf::BpfObserver& obs, const std::function<bool()>& done,
                 const fikit::bpf::BpfObserver::EventCallback& cb = {}) {
  const auto end = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    pollfd p{obs.event_fd(), POLLIN, 0};
    poll(&p, 1, 100);
    if (obs.consume(cb) < 0) return false;
  }
  return true;
}

// The usage of `pid` in a snapshot, or nullptr.
inline const fikit::bpf::ProcessUsage* find_usage(const std::vector<fikit::bpf::ProcessUsage>& s,
                                                  pid_t pid) {
  for (const auto& u : s)
    if (u.pid == pid) return &u;
  return nullptr;
}

}  // namespace t
