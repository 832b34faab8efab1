// fikit-audit: the overhead report. Samples fikit's BPF programs (kernel run-time statistics,
// held on only while measuring), the client library's hook counters and the broker's CPU time
// over an interval or while a command runs, and prints the difference (see --help).
#include <fcntl.h>
#include <fikit/util.h>
#include <fikit/version.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "observer.h"
#include "options.h"
#include "prog_stats.h"
#include "report.h"
#include "sample.h"

namespace fikit::audit {
namespace {

volatile sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

// What one measurement works with: the options and, with --load, our own observer.
struct Session {
  const Options& o;
  bpf::BpfObserver* obs = nullptr;
  std::vector<uint32_t> program_ids;  // with --load: report only the programs we loaded
};

// The libcuda to probe: --libcuda, else libcuda.so.1 in LD_LIBRARY_PATH or a usual directory.
std::string find_libcuda(const Options& o) {
  if (!o.libcuda.empty()) return o.libcuda;
  std::string dirs = getenv("LD_LIBRARY_PATH") ? getenv("LD_LIBRARY_PATH") : "";
  dirs +=
      ":/usr/lib/x86_64-linux-gnu:/usr/lib/aarch64-linux-gnu:/usr/lib64:/usr/lib"
      ":/usr/local/nvidia/lib64";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && access((dir + "/libcuda.so.1").c_str(), R_OK) == 0)
      return dir + "/libcuda.so.1";
    start = end + 1;
  }
  return "";
}

bpf::Result<std::unique_ptr<bpf::BpfObserver>> load_observer(const Options& o) {
  bpf::BpfConfig config;
  config.verbose = o.verbose;
  if (!o.test_device.empty()) {
    bpf::Result<bpf::DeviceId> dev = bpf::char_device_of(o.test_device);
    if (!dev.ok()) return dev.status();
    config.test_device = dev.value();
  }
  if (o.audit_launches) {
    config.audit.enabled = true;
    config.audit.library = find_libcuda(o);
    config.audit.functions = o.functions;
    if (config.audit.library.empty())
      return bpf::Status(bpf::StatusCode::kNotFound,
                         "failed to find libcuda.so.1 to probe: pass --libcuda PATH");
  }
  return bpf::BpfObserver::open(config);
}

std::vector<uint32_t> program_ids_of(const bpf::BpfObserver& obs) {
  std::vector<uint32_t> ids;
  for (int fd : obs.program_fds()) {
    bpf::Result<uint32_t> id = bpf::program_id(fd);
    if (id.ok()) ids.push_back(id.value());
  }
  return ids;
}

// Drain the observer's events (so its ring buffer never fills), printing them with --events.
void drain(const Session& s) {
  if (!s.obs) return;
  static const bpf::BpfObserver::EventCallback kPrint = [](const bpf::GpuEvent& e) {
    std::fprintf(stderr, "fikit-audit: %s\n", bpf::describe_event(e).c_str());
  };
  s.obs->consume(s.o.events ? kPrint : bpf::BpfObserver::EventCallback{});
}

// Wait `seconds` (or until Ctrl-C) while draining events.
void wait_interval(const Session& s, double seconds) {
  const uint64_t end = now_ns() + static_cast<uint64_t>(seconds * 1e9);
  for (uint64_t now = now_ns(); now < end && !g_interrupted; now = now_ns()) {
    pollfd p{s.obs ? s.obs->event_fd() : -1, POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::min<uint64_t>((end - now) / 1000000 + 1, 100)));
    drain(s);
  }
}

// Wait for `pid` to exit while draining events; return its wait status.
int wait_child(const Session& s, pid_t pid) {
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, s.obs ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (!s.obs) continue;
    pollfd p{s.obs->event_fd(), POLLIN, 0};
    poll(&p, 1, 50);
    drain(s);
  }
  drain(s);  // the exit event is in the ring before waitpid returns
  return status;
}

// Fork COMMAND stopped on a pipe, so that uprobes can be attached to its pid before it runs.
pid_t spawn_held(const std::vector<std::string>& argv, int* release_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(fds[1]);
    if (read(fds[0], &c, 1) != 1) _exit(126);  // fikit-audit went away
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "fikit-audit: failed to run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[0]);
  *release_fd = fds[1];
  return pid;
}

// What the observer saw of the command.
void command_usage(const Session& s, CommandResult* c) {
  if (!s.obs) return;
  for (const bpf::ProcessUsage& u : s.obs->snapshot()) {
    if (u.pid != c->pid) continue;
    c->usage = u;
    c->observed = true;
    for (const bpf::IoctlStat& st : u.ioctls) c->gpu_ioctls += st.count;
    for (const bpf::LaunchCount& l : u.launches) c->launches += l.count;
  }
}

// Measure while COMMAND runs.
bpf::Result<Report> measure_command(const Session& s) {
  int release = -1;
  CommandResult cmd;
  cmd.ran = true;
  cmd.pid = spawn_held(s.o.command, &release);
  if (cmd.pid < 0) return bpf::errno_status(errno, "start " + s.o.command[0]);
  if (s.o.audit_launches) {
    bpf::Result<int> attached = s.obs->audit_process(cmd.pid);
    if (!attached.ok()) {
      kill(cmd.pid, SIGKILL);
      waitpid(cmd.pid, nullptr, 0);
      return attached.status();
    }
  }
  bpf::Result<Sample> first = take_sample(s.program_ids);
  (void)!write(release, "x", 1);
  close(release);
  cmd.wait_status = wait_child(s, cmd.pid);
  bpf::Result<Sample> last = take_sample(s.program_ids);
  if (!first.ok()) return first.status();
  if (!last.ok()) return last.status();
  command_usage(s, &cmd);
  Report r = make_report(first.value(), last.value());
  r.command = cmd;
  return r;
}

bpf::Result<Report> measure_interval(const Session& s) {
  bpf::Result<Sample> first = take_sample(s.program_ids);
  if (!first.ok()) return first.status();
  wait_interval(s, s.o.interval_s);
  bpf::Result<Sample> last = take_sample(s.program_ids);
  if (!last.ok()) return last.status();
  return make_report(first.value(), last.value());
}

int fail(const bpf::Status& status) {
  std::fprintf(stderr, "fikit-audit: %s\n", status.message().c_str());
  return 1;
}

int run(const Options& o) {
  std::unique_ptr<bpf::BpfObserver> obs;
  if (o.load) {
    bpf::Result<std::unique_ptr<bpf::BpfObserver>> loaded = load_observer(o);
    if (!loaded.ok()) return fail(loaded.status());
    obs = std::move(loaded.value());
  }
  Session s{o, obs.get(), obs ? program_ids_of(*obs) : std::vector<uint32_t>{}};
  // Statistics on only while measuring: the session closes before the report is printed.
  std::optional<bpf::Result<Report>> report;
  {
    bpf::Result<bpf::StatsSession> stats = bpf::StatsSession::start();
    if (!stats.ok()) return fail(stats.status());
    report.emplace(o.command.empty() ? measure_interval(s) : measure_command(s));
  }
  if (!report->ok()) return fail(report->status());
  const std::string text = o.json ? format_json(report->value()) : format_text(report->value());
  std::fputs(text.c_str(), stdout);
  const CommandResult& c = report->value().command;
  if (c.ran && !(WIFEXITED(c.wait_status) && WEXITSTATUS(c.wait_status) == 0)) return 3;
  return 0;
}

}  // namespace
}  // namespace fikit::audit

int main(int argc, char** argv) {
  fikit::audit::Options o;
  const std::string err = fikit::audit::parse_options(argc, argv, &o);
  if (o.help) {
    std::fputs(fikit::audit::usage(), stdout);
    return 0;
  }
  if (o.version) {
    std::printf("%s\n", fikit::version_text("fikit-audit").c_str());
    return 0;
  }
  if (!err.empty()) {
    std::fprintf(stderr, "fikit-audit: %s\n\n%s", err.c_str(), fikit::audit::usage());
    return 2;
  }
  signal(SIGINT, fikit::audit::on_sigint);
  return fikit::audit::run(o);
}
