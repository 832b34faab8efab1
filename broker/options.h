// Command line of fikit-broker: start | stop | status | profile, their options, the configuration
// file (/etc/fikit/broker.conf) and the help texts.
#pragma once

#include <fikit/result.h>

#include <cstdint>
#include <string>

#include "base/log.h"
#include "control/access.h"
#include "gpu/gpu_options.h"
#include "policy/policy.h"
#include "substrate/substrate.h"

namespace fikit::broker {

// Where learned kernel profiles are kept unless --profile-dir says otherwise.
inline constexpr const char* kDefaultProfileDir = "/var/lib/fikit/profiles";
// The configuration file read when it exists (--config FILE names another).
inline constexpr const char* kDefaultConfig = "/etc/fikit/broker.conf";

enum class Command { kHelp, kStart, kStop, kStatus, kProfile };

struct Options {
  Command command = Command::kHelp;
  std::string help_text;  // kHelp: what to print (the whole manual, a command's or --version)
  LogLevel log_level = LogLevel::kInfo;
  bool foreground = false;
  bool json = false;
  std::string socket;              // absolute
  std::string policy;              // a name policy_find() knows
  std::string log;                 // "" = stderr
  std::string run_dir;             // absolute
  PolicyConfig policy_cfg;         // profile_dir: also the `profile` command's directory
  bool profile_dir_given = false;  // --profile-dir (else the default, or RUN_DIR/profiles)
  uint64_t spin_ns = 200'000;
  GpuOptions gpu;                // the eBPF GPU-driver observer: --no-bpf, --audit-launches, ...
  SubstrateConfig substrate;     // --substrate, --calibrate (switch cost: policy_cfg)
  uint32_t hp_marker_every = 0;  // --hp-marker-every: HP idleness measurement (idle_meter.h)
  AccessConfig access;           // ceilings, --hp-group, --admin-group (control/access.h)
  std::string tenant_group = "fikit";      // owns the socket (0660) when it exists, else 0666
  std::string metrics = "127.0.0.1:9842";  // --metrics ADDR:PORT or "off" (metrics/exporter.h)
  // `profile ACTION [NAME]` (profile_command.h).
  std::string profile_action;  // list, show, export, import or rm
  std::string profile_name;
  uint32_t profile_uid = 0;  // whose profile NAME is (default: the caller's uid)
  std::string profile_file;  // export: write here, import: read from here ("" or "-": std streams)
};

// Parse argv (CLI11; the configuration file's values where the command line gives none) and fill
// in every default. A usage error is kInvalidArgument with its message.
Result<Options> parse_options(int argc, char** argv);

// The --help text (80 columns, with EXAMPLES).
std::string usage_text();

// debug, info, warn or error (any case).
Status parse_log_level(const std::string& word, LogLevel* out);

// $FIKIT_SOCKET, else /run/fikit/broker.sock.
std::string default_socket();

}  // namespace fikit::broker
