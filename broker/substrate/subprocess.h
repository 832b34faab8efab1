// Short-lived helper processes of the broker (the MPS control program, fikit-calibrate): run one
// with extra environment and a given stdin, collect its output, bound its run time.
#pragma once

#include <fikit/result.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fikit::broker {

struct ProcessSpec {
  std::vector<std::string> argv;   // argv[0] is searched on PATH when it holds no '/'
  std::vector<std::string> env;    // "NAME=value": added to (or replacing in) the broker's
  std::vector<std::string> unset;  // variables, or variable-name prefixes ending in '*', dropped
  std::string stdin_text;          // "" = /dev/null
  uint64_t timeout_ms = 5000;      // then its process group is killed (SIGKILL)
};

struct ProcessResult {
  int exit_code = -1;      // its exit status, or 128 + the signal that ended it
  bool timed_out = false;  // killed after timeout_ms
  std::string output;      // stdout and stderr together (at most 64 KiB)
};

// Run spec to its end (or its time limit). The child gets its own process group and no file
// descriptors but 0-2. Output goes to an anonymous memory file, not a pipe, so a child that
// daemonizes (keeping our descriptors) cannot hold us. Fails only if the process cannot start.
Result<ProcessResult> run_process(const ProcessSpec& spec);

// The executable `name` in a directory of $PATH, or "" if none.
std::string find_on_path(const std::string& name);

// Return the last line of `text` that is not empty, at most 300 bytes (for log lines).
std::string last_line(const std::string& text);

}  // namespace fikit::broker
