#include "options.h"

#include <getopt.h>

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

enum LongOnly { kJson = 256, kLoad, kEvents, kTestDevice, kAuditLaunches, kLibcuda, kFunctions };

}  // namespace

std::string parse_options(int argc, char** argv, Options* out) {
  static const option kLong[] = {
      {"interval", required_argument, nullptr, 'i'},
      {"json", no_argument, nullptr, kJson},
      {"load", no_argument, nullptr, kLoad},
      {"events", no_argument, nullptr, kEvents},
      {"test-device", required_argument, nullptr, kTestDevice},
      {"audit-launches", no_argument, nullptr, kAuditLaunches},
      {"libcuda", required_argument, nullptr, kLibcuda},
      {"functions", required_argument, nullptr, kFunctions},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  optind = 1;
  opterr = 0;
  for (int c; (c = getopt_long(argc, argv, "+i:h", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'i': {
        char* end = nullptr;
        out->interval_s = std::strtod(optarg, &end);
        if (!end || *end || out->interval_s <= 0)
          return std::string("bad --interval: ") + optarg + " (seconds > 0)";
        break;
      }
      case kJson:
        out->json = true;
        break;
      case kLoad:
        out->load = true;
        break;
      case kEvents:
        out->events = true;
        break;
      case kTestDevice:
        out->test_device = optarg;
        break;
      case kAuditLaunches:
        out->audit_launches = true;
        break;
      case kLibcuda:
        out->libcuda = optarg;
        break;
      case kFunctions:
        out->functions = split_commas(optarg);
        break;
      case 'h':
        out->help = true;
        return "";
      default:
        return std::string("unknown or incomplete option: ") + argv[optind - 1];
    }
  }
  for (int i = optind; i < argc; i++) out->command.push_back(argv[i]);
  if (!out->test_device.empty() && !out->load) return "--test-device needs --load";
  if (out->events && !out->load) return "--events needs --load";
  if (out->audit_launches && (!out->load || out->command.empty()))
    return "--audit-launches needs --load and a COMMAND";
  return "";
}

}  // namespace fikit::audit
