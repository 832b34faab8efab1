#include "options.h"

#include <fikit/protocol.h>
#include <getopt.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "metrics/exporter.h"
#include "profile_command.h"
#include "status.h"

namespace fikit::broker {
namespace {

constexpr const char kUsage[] =
    R"(usage: fikit-broker start [--foreground] [--socket PATH] [--policy NAME]
                          [--log FILE] [--run-dir DIR] [--switch-cost-us N]
                          [--margin-us N] [--max-lp-in-flight N] [--spin-us N]
                          [--no-bpf] [--audit-launches] [--bpf-btf FILE]
                          [--profile-dir DIR] [--policy-opts K=V,...]
                          [--substrate mps|timeslice|auto] [--calibrate]
                          [--hp-marker-every N] [--metrics ADDR:PORT|off]
       fikit-broker stop [--socket PATH]
       fikit-broker status [--socket PATH] [--json]
       fikit-broker profile list|show|export|import [NAME] [--profile-dir DIR]
                          [--file FILE]

Share one NVIDIA GPU between tasks of different priority. The broker admits
the processes that run with libfikit.so (tenants), sees their kernel launches
and grants the launches of lower-priority tasks when they may run.

commands:
  start                  start the broker; daemonizes and returns once it
                         listens (or prints why it could not start)
  stop                   stop the running broker (root or the broker's uid);
                         its tenants carry on without it (fail open)
  status                 show the broker and its tenants (with the policy's
                         statistics per tenant)
  profile                kernel profiles the fikit policy learned, per tenant
                         name: list; show NAME; export NAME (JSON to --file
                         or stdout); import NAME (JSON from --file or stdin)

options:
  -h, --help             show this help message and exit
  -s, --socket PATH      control socket (default: $FIKIT_SOCKET, else
                         /run/fikit/broker.sock)
  -f, --foreground       start: stay in the foreground, log to stderr
  -p, --policy NAME      start: scheduling policy (see below)
  -l, --log FILE         start: log file (default: RUN_DIR/broker.log when
                         daemonized, stderr with --foreground)
  -r, --run-dir DIR      start: directory for the log and the MPS daemon's
                         mps-pipe/ and mps-log/ (default: the socket's
                         directory)
  --substrate KIND       start: how tenants share the GPU: mps (the broker
                         runs the MPS control daemon; fikit-run joins its
                         tenants), timeslice (the driver's time-slicing) or
                         auto (default: mps when nvidia-cuda-mps-control,
                         /dev/nvidia0 and root are there, else timeslice)
  --switch-cost-us N     start: cost of giving the GPU back to a higher
                         priority after LP work (default: measured at
                         start-up on timeslice, 200 if that fails; 0 on mps)
  --calibrate            start: measure the switch-back cost on mps too
  --hp-marker-every N    start: measure HP idleness: a completion marker
                         after 1 in N HP launches (~2 us of GPU time each),
                         compared with the host's drains (status --json:
                         hp_idle); 1 for every gap; 0 (default): off
  --margin-us N          start: safety margin of every gap fit (default 20)
  --max-lp-in-flight N   start: bound on granted, unfinished LP launches, for
                         policies that use one (default 16)
  --spin-us N            start: keep polling this long after the last event
                         while work is pending, then sleep (default 200)
  --no-bpf               start: do not load the eBPF GPU-driver observer. By
                         default the broker traces NVIDIA driver ioctls to
                         account GPU contexts and device memory per process
                         and to find GPU processes that bypass it
                         (unmanaged); without root (or CAP_BPF and
                         CAP_PERFMON), kernel BTF or tracefs it warns and
                         runs without it
  --audit-launches       start: also count the kernel launches of unmanaged
                         GPU processes (uprobes on libcuda); each audited
                         launch costs ~1.35 us more (measured on an H100),
                         other processes pay nothing
  --bpf-btf FILE         start: BTF of the running kernel, for kernels
                         without /sys/kernel/btf/vmlinux
  --profile-dir DIR      start, profile: where learned profiles are kept
                         (default /var/lib/fikit/profiles; '' for none)
  --policy-opts K=V,...  start: policy tunables, e.g. gap_quantile=0.05,
                         measure_gap_us=500 (fikit, oracle: docs/POLICY.md)
  --file FILE            profile export/import: the JSON file ('-': stdio)
  --metrics ADDR:PORT    start: serve Prometheus metrics at
                         http://ADDR:PORT/metrics (default 127.0.0.1:9842;
                         'off': none; docs/STATUS.md "Metrics")
  -j, --json             status: print JSON for machines

)";

constexpr const char kExamples[] = R"(
EXAMPLES:
  sudo fikit-broker start          # start with the default policy
  sudo fikit-broker start --policy none
                                   # the default-sharing baseline
  fikit-broker start -f -s /tmp/fikit.sock
                                   # unprivileged, in the foreground
  sudo fikit-broker start --substrate mps
                                   # run MPS; tenants of fikit-run join it
  sudo fikit-broker start --audit-launches
                                   # also count unmanaged launches
  fikit-broker status              # list tenants
  fikit-broker status --json       # the same, for machines
  fikit-broker profile list        # tenants with a saved profile
  fikit-broker profile show resnet-serve
                                   # its kernels: durations, gaps, misses
  fikit-broker profile export resnet-serve --file resnet.json
  fikit-broker profile import resnet-serve --file resnet.json
                                   # move a profile to another machine
  sudo fikit-broker stop           # stop; tenants fail open
)";

enum LongOnly { kSwitchCost = 256, kMargin, kMaxLp, kSpin, kProfileDir, kPolicyOpts };

// The GPU-driver observer's options (gpu_options.h); the test-only ones are not in --help.
// The substrate's options (substrate.h) and the HP idleness measurement (idle_meter.h).
enum SubstrateLongOnly { kSubstrate = 352, kCalibrate, kHpMarkerEvery };
enum MetricsLongOnly { kMetrics = 384 };

enum GpuLongOnly { kNoBpf = 320, kAuditLaunches, kBpfBtf, kBpfTestDevice, kBpfTestAudit };

const option kLongOptions[] = {
    {"help", no_argument, nullptr, 'h'},
    {"socket", required_argument, nullptr, 's'},
    {"foreground", no_argument, nullptr, 'f'},
    {"policy", required_argument, nullptr, 'p'},
    {"log", required_argument, nullptr, 'l'},
    {"run-dir", required_argument, nullptr, 'r'},
    {"json", no_argument, nullptr, 'j'},
    {"switch-cost-us", required_argument, nullptr, kSwitchCost},
    {"substrate", required_argument, nullptr, kSubstrate},
    {"calibrate", no_argument, nullptr, kCalibrate},
    {"hp-marker-every", required_argument, nullptr, kHpMarkerEvery},
    {"margin-us", required_argument, nullptr, kMargin},
    {"max-lp-in-flight", required_argument, nullptr, kMaxLp},
    {"spin-us", required_argument, nullptr, kSpin},
    {"no-bpf", no_argument, nullptr, kNoBpf},
    {"audit-launches", no_argument, nullptr, kAuditLaunches},
    {"bpf-btf", required_argument, nullptr, kBpfBtf},
    {"bpf-test-device", required_argument, nullptr, kBpfTestDevice},
    {"bpf-test-audit", required_argument, nullptr, kBpfTestAudit},
    {"profile-dir", required_argument, nullptr, kProfileDir},
    {"policy-opts", required_argument, nullptr, kPolicyOpts},
    {"metrics", required_argument, nullptr, kMetrics},
    {nullptr, 0, nullptr, 0},
};

const char* option_name(int c) {
  for (const option* o = kLongOptions; o->name; o++)
    if (o->val == c) return o->name;
  return "?";
}

Status usage_error(const std::string& what) { return Status(StatusCode::kInvalidArgument, what); }

// Parse a decimal in [lo, hi] for option `name`.
Status parse_number(const char* name, const char* arg, uint64_t lo, uint64_t hi, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v < lo || v > hi)
    return usage_error(std::string("--") + name + " wants a number from " + std::to_string(lo) +
                       " to " + std::to_string(hi) + ", not '" + arg + "'");
  *out = v;
  return Status();
}

std::string absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (!getcwd(cwd, sizeof(cwd))) return path;
  return std::string(cwd) + "/" + path;
}

Status apply_option(int c, const char* arg, Options* o, bool* start_only) {
  uint64_t v = 0;
  *start_only = c != 's' && c != 'j';
  switch (c) {
    case 's':
      o->socket = arg;
      return Status();
    case 'f':
      o->foreground = true;
      return Status();
    case 'p':
      o->policy = arg;
      return Status();
    case 'l':
      o->log = arg;
      return Status();
    case 'r':
      o->run_dir = arg;
      return Status();
    case 'j':
      o->json = true;
      return Status();
    case kMetrics:
      o->metrics = arg;
      if (o->metrics == "off") return Status();
      return metrics::parse_listen_address(o->metrics).status();
    case kSwitchCost: {
      Status s = parse_number("switch-cost-us", arg, 0, 10'000'000, &v);
      o->policy_cfg.switch_cost_ns = v * 1000;
      o->substrate.switch_cost_given = true;
      return s;
    }
    case kSubstrate:
      return parse_substrate(arg, &o->substrate);
    case kCalibrate:
      o->substrate.calibrate = true;
      return Status();
    case kHpMarkerEvery: {
      Status s = parse_number("hp-marker-every", arg, 0, 1'000'000, &v);
      o->hp_marker_every = static_cast<uint32_t>(v);
      return s;
    }
    case kMargin: {
      Status s = parse_number("margin-us", arg, 0, 10'000'000, &v);
      o->policy_cfg.margin_ns = v * 1000;
      return s;
    }
    case kMaxLp: {
      Status s = parse_number("max-lp-in-flight", arg, 1, 4096, &v);
      o->policy_cfg.max_lp_in_flight = static_cast<uint32_t>(v);
      return s;
    }
    case kSpin: {
      Status s = parse_number("spin-us", arg, 0, 1'000'000, &v);
      o->spin_ns = v * 1000;
      return s;
    }
    case kNoBpf:
      o->gpu.enabled = false;
      return Status();
    case kAuditLaunches:
      o->gpu.audit_launches = true;
      return Status();
    case kBpfBtf:
      o->gpu.btf = arg;
      return Status();
    case kBpfTestDevice:
      return parse_test_device(arg, &o->gpu);
    case kBpfTestAudit:
      return parse_test_audit(arg, &o->gpu);
    case kProfileDir:
      o->policy_cfg.profile_dir = arg;
      return Status();
    case kPolicyOpts:
      o->policy_cfg.opts = arg;
      return Status();
  }
  return usage_error("unknown option");
}

// --policy-opts: the policy checks its own options (PolicyOps::check_opts), now, not in the daemon.
Status check_policy_opts(const std::string& policy, const std::string& opts) {
  if (opts.empty()) return Status();
  const PolicyOps* ops = policy_find(policy.c_str());
  if (!ops->check_opts)
    return usage_error("--policy-opts: policy '" + policy + "' takes no options");
  std::string err;
  if (!ops->check_opts(opts, &err)) return usage_error("--policy-opts: " + err);
  return Status();
}

// Fill in what was not given and check the policy name.
Status resolve_defaults(Options* o) {
  if (Status s = check_gpu_options(o->gpu); !s.ok()) return s;
  if (o->substrate.calibrate && o->substrate.switch_cost_given)
    return usage_error("--calibrate measures what --switch-cost-us gives: choose one");
  if (o->socket.empty()) o->socket = default_socket();
  o->socket = absolute(o->socket);
  if (o->run_dir.empty()) {
    size_t slash = o->socket.find_last_of('/');
    o->run_dir = slash == 0 ? "/" : o->socket.substr(0, slash);
  }
  o->run_dir = absolute(o->run_dir);
  if (o->log.empty() && !o->foreground) o->log = o->run_dir + "/broker.log";
  o->log = absolute(o->log);
  if (o->policy.empty()) o->policy = policy_list()[0]->name;
  if (!policy_find(o->policy.c_str())) {
    std::string names;
    for (const PolicyOps* const* p = policy_list(); *p; p++)
      names += std::string(names.empty() ? "" : ", ") + (*p)->name;
    return usage_error("unknown policy '" + o->policy + "': choose one of " + names);
  }
  o->policy_cfg.profile_dir = absolute(o->policy_cfg.profile_dir);
  return check_policy_opts(o->policy, o->policy_cfg.opts);
}

// Append "  name        description" to `out`, the description wrapped at 80 columns.
void append_policy(std::string* out, const PolicyOps& p) {
  constexpr size_t kIndent = 14, kWidth = 80;
  char head[64];
  snprintf(head, sizeof(head), "  %-10s  ", p.name);
  std::string line = head;
  if (line.size() > kIndent) line += "\n" + std::string(kIndent, ' ');
  std::string word, desc = p.description;
  for (size_t i = 0; i <= desc.size(); i++) {
    if (i < desc.size() && desc[i] != ' ') {
      word += desc[i];
      continue;
    }
    size_t col = line.size() - (line.rfind('\n') == std::string::npos ? 0 : line.rfind('\n') + 1);
    if (col > kIndent && col + 1 + word.size() > kWidth)
      line += "\n" + std::string(kIndent, ' ');
    else if (col > kIndent)
      line += ' ';
    line += word;
    word.clear();
  }
  *out += line + "\n";
}

}  // namespace

std::string default_socket() {
  const char* env = getenv("FIKIT_SOCKET");
  return env && *env ? env : kDefaultSocket;
}

std::string usage_text() {
  std::string text = kUsage;
  text += std::string("policies (default: ") + policy_list()[0]->name + "):\n";
  for (const PolicyOps* const* p = policy_list(); *p; p++) append_policy(&text, **p);
  return text + status_legend() + kExamples;
}

Result<Options> parse_options(int argc, char** argv) {
  Options o;
  o.policy_cfg.profile_dir = kDefaultProfileDir;
  if (argc < 2) return usage_error("no command given: start, stop, status or profile");
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") return o;
  if (cmd == "profile") return parse_profile_options(argc, argv, std::move(o));
  if (cmd == "start")
    o.command = Command::kStart;
  else if (cmd == "stop")
    o.command = Command::kStop;
  else if (cmd == "status")
    o.command = Command::kStatus;
  else
    return usage_error("unknown command '" + cmd + "': use start, stop, status or profile");
  char** args = argv + 1;  // getopt sees the command as its argv[0]
  int nargs = argc - 1;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(nargs, args, ":hs:fp:l:r:j", kLongOptions, nullptr)) != -1) {
    if (c == 'h') {
      o.command = Command::kHelp;
      return o;
    }
    if (c == '?' || c == ':')
      return usage_error(std::string(c == ':' ? "missing value for " : "unknown option ") +
                         args[optind - 1]);
    bool start_only = false;
    if (Status s = apply_option(c, optarg, &o, &start_only); !s.ok()) return s;
    if (start_only && o.command != Command::kStart)
      return usage_error(std::string("--") + option_name(c) + " applies to start only");
    if (c == 'j' && o.command != Command::kStatus)
      return usage_error("--json applies to status only");
  }
  if (optind < nargs) return usage_error(std::string("unexpected argument '") + args[optind] + "'");
  if (Status s = resolve_defaults(&o); !s.ok()) return s;
  return o;
}

}  // namespace fikit::broker
