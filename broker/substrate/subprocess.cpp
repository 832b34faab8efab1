#include "substrate/subprocess.h"

#include <fcntl.h>
#include <fikit/util.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace fikit::broker {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

std::string name_of(const std::string& assignment) {
  return assignment.substr(0, assignment.find('='));
}

bool dropped(const std::string& name, const ProcessSpec& spec) {
  for (const std::string& u : spec.unset) {
    if (!u.empty() && u.back() == '*' ? name.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0
                                      : name == u)
      return true;
  }
  for (const std::string& e : spec.env)
    if (name_of(e) == name) return true;
  return false;
}

// The child's environment: ours minus what spec drops or replaces, plus spec.env.
std::vector<std::string> child_env(const ProcessSpec& spec) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; e++)
    if (!dropped(name_of(*e), spec)) out.emplace_back(*e);
  out.insert(out.end(), spec.env.begin(), spec.env.end());
  return out;
}

// `name` as a path: itself if it holds a '/', else found on $PATH (or itself, so that exec fails
// with ENOENT). Resolved before fork: the child only makes async-signal-safe calls.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string found = find_on_path(name);
  return found.empty() ? name : found;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// An anonymous file holding `text`, positioned at its start. Return its fd or -errno.
int memfd_with(const char* name, const std::string& text) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (!text.empty() && write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    int err = errno ? errno : EIO;
    close(fd);
    return -err;
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

// In the child after fork: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(int in, int out, const char* program, char** argv, char** envp) {
  // The broker blocks the signals its signalfd reads and ignores SIGPIPE; a daemon started
  // from here must not inherit that (it could not be stopped with SIGTERM).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  setpgid(0, 0);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  close_range(3, ~0U, 0);
  execve(program, argv, envp);
  const char* why = strerror(errno);
  const char head[] = "failed to run ";
  (void)!write(STDERR_FILENO, head, sizeof(head) - 1);
  (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
  (void)!write(STDERR_FILENO, ": ", 2);
  (void)!write(STDERR_FILENO, why, strlen(why));
  _exit(127);
}

// Wait for pid until deadline_ns; kill its group after it. Return its wait status.
int wait_bounded(pid_t pid, uint64_t deadline_ns, bool* timed_out) {
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;
    if (now_ns() >= deadline_ns) break;
    timespec ts{0, 1'000'000};
    nanosleep(&ts, nullptr);
  }
  *timed_out = true;
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string read_all(int fd) {
  std::string out(kMaxOutput, '\0');
  ssize_t n = pread(fd, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

std::string find_on_path(const std::string& name) {
  const char* path = getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t pos = 0; pos <= dirs.size();) {
    size_t colon = dirs.find(':', pos);
    if (colon == std::string::npos) colon = dirs.size();
    std::string file = (colon > pos ? dirs.substr(pos, colon - pos) : ".") + "/" + name;
    if (access(file.c_str(), X_OK) == 0) return file;
    pos = colon + 1;
  }
  return "";
}

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return Status(StatusCode::kInvalidArgument, "no program to run");
  std::vector<std::string> env = child_env(spec), args = spec.argv;
  std::string program = resolve_program(args[0]);
  std::vector<char*> envp = pointers(env), argv = pointers(args);
  int in = spec.stdin_text.empty() ? open("/dev/null", O_RDONLY | O_CLOEXEC)
                                   : memfd_with("fikit-stdin", spec.stdin_text);
  if (in < 0 && spec.stdin_text.empty()) in = -errno;
  if (in < 0) return Status::from_errno(-in, "prepare the input of " + args[0]);
  int out = memfd_with("fikit-output", "");
  if (out < 0) {
    close(in);
    return Status::from_errno(-out, "create an output file for " + args[0]);
  }
  uint64_t deadline = now_ns() + spec.timeout_ms * 1'000'000;
  pid_t pid = fork();
  if (pid == 0) exec_child(in, out, program.c_str(), argv.data(), envp.data());
  close(in);
  if (pid < 0) {
    int err = errno;
    close(out);
    return Status::from_errno(err, "fork to run " + args[0]);
  }
  ProcessResult r;
  int status = wait_bounded(pid, deadline, &r.timed_out);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.output = read_all(out);
  close(out);
  return r;
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return "";
  size_t start = text.find_last_of('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = text.substr(start, end + 1 - start);
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

}  // namespace fikit::broker
