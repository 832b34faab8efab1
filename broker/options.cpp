#include "options.h"

#include <fikit/protocol.h>
#include <fikit/version.h>
#include <strings.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "control/status.h"
#include "metrics/exporter.h"
#include "policy/budget.h"

namespace fikit::broker {
namespace {

constexpr const char kUsage[] =
    R"(usage: fikit-broker start [--foreground] [--socket PATH] [--policy NAME]
                          [--log FILE] [--run-dir DIR] [--switch-cost-us N]
                          [--margin-us N] [--max-lp-in-flight N] [--spin-us N]
                          [--no-bpf] [--audit-launches] [--bpf-stats]
                          [--bpf-btf FILE] [--profile-dir DIR]
                          [--policy-opts K=V,...]
                          [--substrate mps|timeslice|auto] [--calibrate]
                          [--hp-marker-every N] [--metrics ADDR:PORT|off]
                          [--hp-budget SPEC]
       fikit-broker stop [--socket PATH]
       fikit-broker status [--socket PATH] [--json]
       fikit-broker profile list|show|export|import|rm [NAME] [--uid UID]
                          [--profile-dir DIR] [--file FILE]
       fikit-broker --version
  every command: [--config FILE] [--log-level LEVEL]; COMMAND --help for its
  own options and examples

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
  profile                kernel profiles the fikit policy learned, per uid and
                         tenant name: list; show NAME; export NAME (JSON to
                         --file or stdout); import NAME (JSON from --file or
                         stdin); rm NAME. --uid UID: another user's (root)

options:
  -h, --help             show this help message and exit
  --version              print the version, the ABI and the git commit
  --config FILE          read options from FILE (default /etc/fikit/broker.conf
                         if it exists): an INI or TOML file with a section per
                         command and the options' long names, e.g.
                         [start] policy = fikit; the command line wins
  --log-level LEVEL      debug, info (default), warn or error
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
  --hp-budget SPEC       start: the slowdown HP requests may take against
                         running alone, for HP tenants that set none
                         (FIKIT_HP_BUDGET): p99=X, p50=X or p50=X,p99=Y
                         (X from 1.0 to 100; default p99=1.10); the fikit
                         policy lets in as much LP work as keeps the HP
                         inside it; off: only LP work predicted to fit
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
  --bpf-stats            start: turn on the kernel's BPF run-time statistics
                         while the broker runs, for the metrics' run time and
                         run count of the observer's programs (every BPF
                         program on the host is then timed at each run)
  --bpf-btf FILE         start: BTF of the running kernel, for kernels
                         without /sys/kernel/btf/vmlinux
  --profile-dir DIR      start, profile: where learned profiles are kept
                         (default /var/lib/fikit/profiles, or RUN_DIR/profiles
                         with --socket or --run-dir; '' for none)
  --policy-opts K=V,...  start: policy tunables, e.g. gap_quantile=0.05,
                         measure_gap_us=500 (fikit, oracle: docs/POLICY.md)
  --priority-ceiling WHO=LEVEL
                         start: the highest priority WHO may claim: uid:N,
                         user:NAME, group:NAME or '*' (everyone else; default
                         normal); repeat it, the first match wins. Root and
                         --hp-group members may claim high. A tenant asking
                         more is admitted at its ceiling and told so
  --over-ceiling WHAT    start: admit (default) or refuse such a tenant
  --hp-group GROUP       start: its members may claim high (default fikit-hp)
  --admin-group GROUP    start: its members may stop the broker and see all
                         tenants in status (default fikit-admin; root and
                         the broker's uid always may)
  --tenant-group GROUP   start: the control socket is root:GROUP 0660
                         (default fikit); without that group 0666
  --file FILE            profile export/import: the JSON file ('-': stdio)
  --metrics ADDR:PORT    start: serve Prometheus metrics at
                         http://ADDR:PORT/metrics (default 127.0.0.1:9842;
                         'off': none; docs/STATUS.md "Metrics")
  -j, --json             status: print JSON for machines

)";

constexpr const char kStartExamples[] =
    R"(Every command also takes --config FILE and --log-level LEVEL.
Policies, and the long help of every option: fikit-broker --help.

EXAMPLES:
  sudo fikit-broker start          # daemonize; /run/fikit/broker.sock
  sudo fikit-broker start --policy none --no-bpf
  mkdir -m 0700 ~/fikit; fikit-broker start -f -s ~/fikit/broker.sock
                                   # unprivileged, in the foreground
  sudo fikit-broker start --config /etc/fikit/test.conf
)";

constexpr const char kProfileExamples[] = R"(EXAMPLES:
  fikit-broker profile list        # tenants with a saved profile
  fikit-broker profile show resnet-serve
  fikit-broker profile export resnet-serve --file resnet.json
  fikit-broker profile import resnet-serve --file resnet.json
)";

constexpr const char kExamples[] = R"(
EXAMPLES:
  sudo fikit-broker start          # start with the default policy
  sudo fikit-broker start --policy none
                                   # the default-sharing baseline
  mkdir -m 0700 ~/fikit; fikit-broker start -f -s ~/fikit/broker.sock
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

Status usage_error(const std::string& what) { return Status(StatusCode::kInvalidArgument, what); }

std::string absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (!getcwd(cwd, sizeof(cwd))) return path;
  return std::string(cwd) + "/" + path;
}

// Parse a decimal in [lo, hi] for option `name`.
Status parse_number(const char* name, const std::string& arg, uint64_t lo, uint64_t hi,
                    uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(arg.c_str(), &end, 10);
  if (errno != 0 || end == arg.c_str() || *end != '\0' || arg[0] == '-' || v < lo || v > hi)
    return usage_error(std::string("--") + name + " wants a number from " + std::to_string(lo) +
                       " to " + std::to_string(hi) + ", not '" + arg + "'");
  *out = v;
  return Status();
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
  bool run_dir_given = !o->run_dir.empty();
  if (o->socket.empty()) o->socket = default_socket();
  o->socket = absolute(o->socket);
  bool private_broker = run_dir_given || o->socket != kDefaultSocket;
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
  // A private broker (its own socket or run directory) keeps its profiles beside them.
  if (!o->profile_dir_given && private_broker) o->policy_cfg.profile_dir = o->run_dir + "/profiles";
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

namespace {

// Add an option whose value goes through `apply`; a refusal is CLI11's error, with our message.
CLI::Option* add_value(CLI::App* app, const std::string& flags, const std::string& help,
                       const char* type, std::function<Status(const std::string&)> apply) {
  return app
      ->add_option_function<std::string>(
          flags,
          [apply](const std::string& v) {
            if (Status s = apply(v); !s.ok()) throw CLI::ValidationError(s.message());
          },
          help)
      ->type_name(type);
}

// Add --NAME N, a number in [lo, hi] stored as n * scale into *out.
template <typename T>
void add_number(CLI::App* app, const char* name, const std::string& help, uint64_t lo, uint64_t hi,
                uint64_t scale, T* out) {
  add_value(app, std::string("--") + name, help, "N", [=](const std::string& v) {
    uint64_t n = 0;
    Status s = parse_number(name, v, lo, hi, &n);
    *out = static_cast<T>(n * scale);
    return s;
  });
}

void add_socket(CLI::App* app, Options* o) {
  app->add_option(
         "-s,--socket", o->socket,
         "control socket (default: $FIKIT_SOCKET, else\n" + std::string(kDefaultSocket) + ")")
      ->type_name("PATH");
}

// Who may claim which priority and who may stop the broker (control/access.h).
void add_access(CLI::App* s, Options* o) {
  s->add_option_function<std::vector<std::string>>(
       "--priority-ceiling",
       [o](const std::vector<std::string>& specs) {
         for (const std::string& spec : specs)
           if (Status st = parse_ceiling_rule(spec, &o->access); !st.ok())
             throw CLI::ValidationError(st.message());
       },
       "WHO=LEVEL: the highest priority WHO (uid:N,\nuser:NAME, group:NAME, '*') may claim")
      ->type_name("WHO=LEVEL")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  s->add_option("--hp-group", o->access.hp_group, "members may claim high (default fikit-hp)")
      ->type_name("GROUP");
  s->add_option("--admin-group", o->access.admin_group,
                "members may stop the broker (default fikit-admin)")
      ->type_name("GROUP");
  s->add_option("--tenant-group", o->tenant_group,
                "owns the socket, 0660 (default fikit; 0666\nif there is no such group)")
      ->type_name("GROUP");
  add_value(s, "--over-ceiling", "admit (at the ceiling, default) or refuse", "WHAT",
            [o](const std::string& v) {
              if (v != "admit" && v != "refuse")
                return usage_error("--over-ceiling wants admit or refuse, not '" + v + "'");
              o->access.refuse_over_ceiling = v == "refuse";
              return Status();
            });
}

void add_start(CLI::App* app, Options* o) {
  CLI::App* s = app->add_subcommand("start", "start the broker");
  s->fallthrough();
  s->footer(kStartExamples);
  s->callback([o] { o->command = Command::kStart; });
  add_socket(s, o);
  s->add_flag("-f,--foreground", o->foreground, "stay in the foreground, log to stderr");
  s->add_option("-p,--policy", o->policy, "scheduling policy (fikit-broker --help lists them)")
      ->type_name("NAME");
  s->add_option("-l,--log", o->log, "log file (default: RUN_DIR/broker.log, daemonized)")
      ->type_name("FILE");
  s->add_option("-r,--run-dir", o->run_dir, "log, mps-pipe/, mps-log/ (default: socket's dir)")
      ->type_name("DIR");
  add_value(s, "--substrate", "mps, timeslice or auto (default)", "KIND",
            [o](const std::string& v) { return parse_substrate(v.c_str(), &o->substrate); });
  add_value(s, "--switch-cost-us", "cost of giving the GPU back (default: measured)", "N",
            [o](const std::string& v) {
              uint64_t n = 0;
              Status st = parse_number("switch-cost-us", v, 0, 10'000'000, &n);
              o->policy_cfg.switch_cost_ns = n * 1000;
              o->substrate.switch_cost_given = true;
              return st;
            });
  s->add_flag("--calibrate", o->substrate.calibrate, "measure the switch-back cost on mps too");
  add_number(s, "hp-marker-every", "HP idleness: a marker after 1 in N HP launches", 0, 1'000'000,
             1, &o->hp_marker_every);
  add_number(s, "margin-us", "safety margin of every gap fit (default 20)", 0, 10'000'000, 1000,
             &o->policy_cfg.margin_ns);
  add_number(s, "max-lp-in-flight", "bound on granted, unfinished LP launches (16)", 1, 4096, 1,
             &o->policy_cfg.max_lp_in_flight);
  add_value(s, "--hp-budget", "HP slowdown allowed (default p99=1.10; off)", "SPEC",
            [o](const std::string& v) {
              std::string err;
              if (!hp_budget_parse(v, &o->policy_cfg.hp_budget, &err))
                return usage_error("--hp-budget: " + err);
              return Status();
            });
  add_number(s, "spin-us", "poll this long after the last event (default 200)", 0, 1'000'000, 1000,
             &o->spin_ns);
  s->add_flag_callback(
      "--no-bpf", [o] { o->gpu.enabled = false; }, "do not load the eBPF GPU-driver observer");
  s->add_flag("--audit-launches", o->gpu.audit_launches, "count unmanaged kernel launches too");
  s->add_flag("--bpf-stats", o->gpu.run_stats, "count the observer programs' run time (metrics)");
  s->add_option("--bpf-btf", o->gpu.btf, "BTF of the running kernel")->type_name("FILE");
  // Test-only (gpu_options.h): not in --help.
  add_value(s, "--bpf-test-device", "", "DEV", [o](const std::string& v) {
    return parse_test_device(v.c_str(), &o->gpu);
  })->group("");
  add_value(s, "--bpf-test-gpu-device", "", "DEV", [o](const std::string& v) {
    return parse_test_gpu_device(v.c_str(), &o->gpu);
  })->group("");
  add_value(s, "--bpf-test-audit", "", "LIB", [o](const std::string& v) {
    return parse_test_audit(v.c_str(), &o->gpu);
  })->group("");
  add_value(s, "--profile-dir",
            "learned profiles (default " + std::string(kDefaultProfileDir) +
                ",\nRUN_DIR/profiles with --socket/--run-dir)",
            "DIR", [o](const std::string& v) {
              o->policy_cfg.profile_dir = v;
              o->profile_dir_given = true;
              return Status();
            });
  s->add_option("--policy-opts", o->policy_cfg.opts, "policy tunables (docs/POLICY.md)")
      ->type_name("K=V,...");
  add_value(s, "--metrics",
            "Prometheus metrics at http://ADDR:PORT/metrics\n(default 127.0.0.1:9842; off: none)",
            "ADDR:PORT", [o](const std::string& v) {
              o->metrics = v;
              if (v == "off") return Status();
              return metrics::parse_listen_address(v).status();
            });
  add_access(s, o);
}

// `profile ACTION`: one subcommand per action, each with NAME where it takes one.
CLI::App* add_profile_action(CLI::App* profile, const char* action, const char* help,
                             const char* examples, Options* o) {
  CLI::App* a = profile->add_subcommand(action, help);
  a->fallthrough();
  a->footer(examples);
  a->callback([o, action] {
    o->command = Command::kProfile;
    o->profile_action = action;
  });
  a->add_option("--profile-dir", o->policy_cfg.profile_dir,
                "the profiles (default " + std::string(kDefaultProfileDir) + ")")
      ->type_name("DIR");
  if (std::string(action) != "list") {
    a->add_option("name", o->profile_name, "the tenant's name")->required()->type_name("NAME");
    a->add_option("--uid", o->profile_uid, "whose profile (default: yours)")->type_name("UID");
  }
  if (std::string(action) == "export" || std::string(action) == "import")
    a->add_option("--file", o->profile_file, "the JSON file (default, or '-': stdio)")
        ->type_name("FILE");
  return a;
}

void add_profile(CLI::App* app, Options* o) {
  CLI::App* p = app->add_subcommand("profile", "kernel profiles the fikit policy learned");
  p->fallthrough();
  p->require_subcommand(1);
  p->footer(kProfileExamples);
  add_profile_action(p, "list", "tenants with a saved profile",
                     "EXAMPLES:\n  fikit-broker profile list\n", o);
  add_profile_action(p, "show", "a profile's kernels: names, durations, gaps, misses",
                     "EXAMPLES:\n  fikit-broker profile show resnet-serve\n", o);
  add_profile_action(p, "export", "write a profile as JSON (to --file or stdout)",
                     "EXAMPLES:\n  fikit-broker profile export resnet-serve --file r.json\n", o);
  add_profile_action(p, "import", "install a profile from JSON (--file or stdin)",
                     "EXAMPLES:\n  fikit-broker profile import resnet-serve --file r.json\n", o);
  add_profile_action(p, "rm", "remove a profile",
                     "EXAMPLES:\n  sudo fikit-broker profile rm resnet-serve --uid 1000\n", o);
}

// The whole command line. Options of each command are its own (`start --help` lists start's);
// --log-level and --config belong to all (a command passes what it does not know up).
void build_app(CLI::App* app, Options* o) {
  // As with getopt, the last of a repeated option wins (commands inherit this).
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app->set_version_flag("--version", version_text("fikit-broker"));
  app->set_help_flag("-h,--help", "show this help message and exit");
  app->set_config("--config", kDefaultConfig, "options from FILE (INI or TOML; [start] etc.)")
      ->type_name("FILE");
  app->allow_config_extras(CLI::config_extras_mode::error);
  add_value(app, "--log-level", "debug, info (default), warn or error", "LEVEL",
            [o](const std::string& v) { return parse_log_level(v, &o->log_level); });
  app->require_subcommand(1);
  add_start(app, o);
  CLI::App* stop = app->add_subcommand("stop", "stop the running broker (root or its uid)");
  stop->fallthrough();
  stop->callback([o] { o->command = Command::kStop; });
  stop->footer("EXAMPLES:\n  sudo fikit-broker stop           # tenants carry on (fail open)\n");
  add_socket(stop, o);
  CLI::App* status = app->add_subcommand("status", "show the broker and its tenants");
  status->fallthrough();
  status->callback([o] { o->command = Command::kStatus; });
  status->footer(
      "EXAMPLES:\n  fikit-broker status              # list tenants\n"
      "  fikit-broker status --json       # the same, for machines\n");
  add_socket(status, o);
  status->add_flag("-j,--json", o->json, "print JSON for machines");
  add_profile(app, o);
}

// Fill in what a `profile` command did not give.
Status resolve_profile(Options* o) {
  if (o->policy_cfg.profile_dir.empty()) return usage_error("--profile-dir wants a directory");
  o->policy_cfg.profile_dir = absolute(o->policy_cfg.profile_dir);
  return Status();
}

}  // namespace

Status parse_log_level(const std::string& word, LogLevel* out) {
  static const std::pair<const char*, LogLevel> kLevels[] = {{"debug", LogLevel::kDebug},
                                                             {"info", LogLevel::kInfo},
                                                             {"warn", LogLevel::kWarn},
                                                             {"warning", LogLevel::kWarn},
                                                             {"error", LogLevel::kError}};
  for (const auto& [name, level] : kLevels)
    if (strcasecmp(word.c_str(), name) == 0) {
      *out = level;
      return Status();
    }
  return usage_error("unknown log level '" + word + "': use debug, info, warn or error");
}

Result<Options> parse_options(int argc, char** argv) {
  Options o;
  o.profile_uid = getuid();
  o.policy_cfg.profile_dir = kDefaultProfileDir;
  if (argc < 2) return usage_error("no command given: start, stop, status or profile");
  std::string cmd = argv[1];
  if (cmd == "help") cmd = "--help";
  if (cmd[0] != '-' && cmd != "start" && cmd != "stop" && cmd != "status" && cmd != "profile")
    return usage_error("unknown command '" + cmd + "': use start, stop, status or profile");
  CLI::App app("Share one NVIDIA GPU between tasks of different priority.", "fikit-broker");
  build_app(&app, &o);
  try {
    if (cmd == "--help" || cmd == "-h") throw CLI::CallForHelp();
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    o.command = Command::kHelp;
    // The top level's help is the whole manual; a command's is its own part.
    o.help_text = app.get_subcommands().empty() ? usage_text() : app.help();
    return o;
  } catch (const CLI::CallForVersion& e) {
    o.command = Command::kHelp;
    o.help_text = version_text("fikit-broker") + "\n";
    return o;
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (o.command == Command::kProfile) {
    if (Status s = resolve_profile(&o); !s.ok()) return s;
    return o;
  }
  if (Status s = resolve_defaults(&o); !s.ok()) return s;
  return o;
}

}  // namespace fikit::broker
