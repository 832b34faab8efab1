#include "daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/safe_fs.h"
#include "broker.h"
#include "control/endpoint.h"
#include "notify.h"

namespace fikit::broker {
namespace {

// Readiness for systemd (Type=notify), once the socket listens, or why the start failed.
void tell_systemd(const Options& o, const Status& s,
                  const std::vector<std::string>& degraded = {}) {
  std::string modes;
  for (const std::string& d : degraded) modes += "; degraded: " + d;
  if (s.ok())
    notify_ready("listening on " + o.socket + " (policy " + o.policy + ")" + modes);
  else
    notify_status("failed to start: " + s.message());
}

// Set up logging for `o` before anything is logged: the level, and journald's priority prefixes
// when systemd reads our stderr. Take $NOTIFY_SOCKET from the environment (notify.h).
void setup_logging(const Options& o) {
  log_set_level(o.log_level);
  log_set_journal(o.log.empty() && log_journal_detected());
  notify_init();
}

// The daemon's side of the readiness pipe: "R<pid>" and a line per degraded mode once listening,
// "E<message>" on failure.
void report(int fd, const Status& s, const std::vector<std::string>& degraded = {}) {
  std::string msg = s.ok() ? "R" + std::to_string(getpid()) : "E" + s.message();
  if (s.ok())
    for (const std::string& d : degraded) msg += "\n" + d;
  ssize_t n = write(fd, msg.data(), msg.size());
  (void)n;
  close(fd);
}

// In the daemon: detach from the terminal, send output to the log, run. Never returns.
[[noreturn]] void daemon_main(const Options& o, int ready_fd) {
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  if (Status s = log_open(o.log); !s.ok()) {
    report(ready_fd, s);
    _exit(1);
  }
  if (null_fd >= 0 && o.log.empty()) {
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
  }
  if (null_fd > STDERR_FILENO) close(null_fd);
  if (chdir("/") != 0) FIKIT_LOG_WARN("failed to chdir to /: %s", strerror(errno));
  umask(022);
  bool reported = false;
  int code = run_broker(o, [&](const Status& s, const std::vector<std::string>& degraded) {
    if (!s.ok()) FIKIT_LOG_ERROR("%s", s.message().c_str());
    tell_systemd(o, s, degraded);
    report(ready_fd, s, degraded);
    reported = true;
  });
  if (!reported) report(ready_fd, Status(StatusCode::kInternal, "broker ended during start-up"));
  exit(code);
}

int fail(const Status& s) {
  fprintf(stderr, "fikit-broker: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

Status prepare_dirs(const Options& o) {
  const std::string socket_dir = dir_of(o.socket);
  for (const std::string& d : {o.run_dir, socket_dir}) {
    Result<DirFd> fd = open_owned_dir(d, {.create = true, .mode = 0755, .hint = kRunDirHint});
    if (!fd.ok()) return fd.status();
  }
  if (o.policy_cfg.profile_dir.empty()) return Status();
  Result<DirFd> fd = open_owned_dir(o.policy_cfg.profile_dir,
                                    {.create = true,
                                     .mode = 0700,
                                     .hint = "run as root, or give --profile-dir in a directory "
                                             "you own"});
  return fd.ok() ? Status() : fd.status();
}

int start_foreground(const Options& o) {
  setup_logging(o);
  if (Status s = prepare_dirs(o); !s.ok()) return tell_systemd(o, s), fail(s);
  if (Status s = log_open(o.log); !s.ok()) return tell_systemd(o, s), fail(s);
  return run_broker(o, [&o](const Status& s, const std::vector<std::string>& degraded) {
    tell_systemd(o, s, degraded);
    // The log may be a file: say it on the terminal too.
    if (!s.ok()) fprintf(stderr, "fikit-broker: %s\n", s.message().c_str());
    if (!o.log.empty())
      for (const std::string& d : degraded)
        fprintf(stderr, "fikit-broker: degraded: %s\n", d.c_str());
  });
}

int start_daemon(const Options& o) {
  setup_logging(o);
  // Checked here, before the fork, so that a refusal is printed on the terminal.
  if (Status s = prepare_dirs(o); !s.ok()) return fail(s);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    fprintf(stderr, "fikit-broker: failed to create a pipe: %s\n", strerror(errno));
    return 1;
  }
  fflush(nullptr);
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "fikit-broker: failed to fork: %s\n", strerror(errno));
    return 1;
  }
  if (child == 0) {
    close(p[0]);
    setsid();
    // Fork again: the daemon is not a session leader, so it never gets a controlling terminal.
    pid_t daemon = fork();
    if (daemon != 0) _exit(daemon < 0 ? 1 : 0);
    daemon_main(o, p[1]);
  }
  close(p[1]);
  waitpid(child, nullptr, 0);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) msg.append(buf, static_cast<size_t>(n));
  close(p[0]);
  if (!msg.empty() && msg[0] == 'R') {
    std::vector<std::string> lines;
    for (size_t at = 1, nl; at <= msg.size(); at = nl + 1) {
      nl = msg.find('\n', at);
      if (nl == std::string::npos) nl = msg.size();
      lines.push_back(msg.substr(at, nl - at));
    }
    printf("fikit-broker: started (pid %s, socket %s, policy %s, log %s)\n", lines[0].c_str(),
           o.socket.c_str(), o.policy.c_str(), o.log.empty() ? "none" : o.log.c_str());
    fflush(stdout);
    for (size_t i = 1; i < lines.size(); i++)
      fprintf(stderr, "fikit-broker: degraded: %s\n", lines[i].c_str());
    return 0;
  }
  if (!msg.empty())
    fprintf(stderr, "fikit-broker: %s\n", msg.c_str() + 1);
  else
    fprintf(stderr, "fikit-broker: the broker exited during start-up; see %s\n", o.log.c_str());
  return 1;
}

}  // namespace fikit::broker
