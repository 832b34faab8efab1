#include "options.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <sstream>

namespace fikit::audit {

const char* usage() {
  return R"(usage: fikit-audit [options] [-- COMMAND [ARGS...]]

Report what fikit costs on this machine: per BPF program the events per second, the
nanoseconds per run and the CPU share (kernel BPF run-time statistics, run_cnt and
run_time_ns), the GPU ioctls traced and the BPF time per traced ioctl, the client
library's launch hook counters per tenant, and the broker's CPU time. Measures for
an interval, or while COMMAND runs.

  -i, --interval SEC      measure for SEC seconds (default 5; ignored with COMMAND)
      --json              machine-readable output
      --load              load the GPU observer in this process (as `fikit-broker
                          start` does) and report its programs only, instead of
                          a running broker's
      --events            with --load: print the GPU events seen (clients,
                          contexts, memory, streams, exits) on stderr
      --test-device PATH  with --load: decode ioctls on the character device PATH
                          as the NVIDIA driver's (tests and benchmarks, no GPU)
      --audit-launches    with --load and COMMAND: count COMMAND's kernel launches
                          with uprobes on libcuda. Each launch then costs about
                          1.35 us more (measured on an H100: +43% of a launch);
                          without this option launches cost nothing extra.
      --libcuda PATH      the library to probe (default: libcuda.so.1 found in
                          LD_LIBRARY_PATH and the usual library directories)
      --functions LIST    comma-separated entry points to probe (default: libcuda's
                          cuLaunchKernel*, cuLaunchCooperativeKernel*, cuGraphLaunch*)
      --log-level LEVEL   debug prints libbpf's debug messages on stderr; info,
                          warn and error (the default: warnings and errors)
      --version           print the version, the ABI and the git commit
  -h, --help              this text

Statistics are on (BPF_ENABLE_STATS) only while measuring; enabling them adds a
little to every BPF program run. bpftool's `prog profile` is not available in
Debian's bpftool 7.1: check the numbers with the `bpftool prog show id N` lines
printed at the end (bpftool shows totals since the statistics were first on).

Exit status: 0; 1 if measuring failed; 2 on a usage error; 3 if COMMAND failed.

EXAMPLES
  sudo fikit-audit                        5 s of the running broker's programs
  sudo fikit-audit --json -i 10           the same for 10 s, as JSON
  sudo fikit-audit --load -- python serve.py
                                          observer cost over one run, no broker
  sudo fikit-audit --load --audit-launches -- ./app
                                          also count (and pay for) app's launches
)";
}

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

std::string parse_options(int argc, char** argv, Options* out) {
  // The help text is usage(), written by hand; CLI11 only parses.
  CLI::App app("", "fikit-audit");
  app.set_help_flag();
  bool help = false, version = false;
  std::string interval, functions, level;
  app.add_flag("-h,--help", help);
  app.add_flag("--version", version);
  app.add_option("-i,--interval", interval);
  app.add_flag("--json", out->json);
  app.add_flag("--load", out->load);
  app.add_flag("--events", out->events);
  app.add_option("--test-device", out->test_device);
  app.add_flag("--audit-launches", out->audit_launches);
  app.add_option("--libcuda", out->libcuda);
  app.add_option("--functions", functions);
  app.add_option("--log-level", level);
  // Everything from COMMAND on is COMMAND's, options included, even without "--".
  app.prefix_command();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  if (help || version) {
    out->help = help;
    out->version = version;
    return "";
  }
  out->command = app.remaining();
  if (!out->command.empty() && out->command[0] == "--")
    out->command.erase(out->command.begin());
  else if (!out->command.empty() && out->command[0].size() > 1 && out->command[0][0] == '-')
    return "unknown option: " + out->command[0];
  if (!interval.empty()) {
    char* end = nullptr;
    out->interval_s = std::strtod(interval.c_str(), &end);
    if (!end || *end || out->interval_s <= 0)
      return "bad --interval: " + interval + " (seconds > 0)";
  }
  if (!functions.empty()) out->functions = split_commas(functions);
  if (level == "debug")
    out->verbose = true;
  else if (!level.empty() && level != "info" && level != "warn" && level != "error")
    return "unknown log level '" + level + "': use debug, info, warn or error";
  if (!out->test_device.empty() && !out->load) return "--test-device needs --load";
  if (out->events && !out->load) return "--events needs --load";
  if (out->audit_launches && (!out->load || out->command.empty()))
    return "--audit-launches needs --load and a COMMAND";
  return "";
}

}  // namespace fikit::audit
