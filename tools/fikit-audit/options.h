// fikit-audit's command line (parsed with CLI11; the help text is written by hand).
#pragma once

#include <string>
#include <vector>

namespace fikit::audit {

struct Options {
  double interval_s = 5.0;  // without a command
  bool json = false;
  bool load = false;        // load the GPU observer here instead of measuring the broker's
  bool events = false;      // with --load: print the GPU events it sees
  std::string test_device;  // with --load: a character device decoded as the driver
  bool audit_launches = false;
  std::string libcuda;                 // with --audit-launches: the library to probe
  std::vector<std::string> functions;  // with --audit-launches: entry points (default: libcuda's)
  std::vector<std::string> command;    // measured while it runs
  bool verbose = false;                // --log-level debug: libbpf's debug messages
  bool help = false;
  bool version = false;
};

// Parse argv. Return "" on success, else what is wrong (for the usage message).
std::string parse_options(int argc, char** argv, Options* out);

// The --help text.
const char* usage();

}  // namespace fikit::audit
