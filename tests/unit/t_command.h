// For the broker's unit tests that run the fikit-broker binary: where it is, and running a
// command for its output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace fikit {

// The broker under test: $FIKIT_BUILD_DIR/bin/fikit-broker (ctest sets it).
inline std::string t_broker_bin() {
  const char* dir = getenv("FIKIT_BUILD_DIR");
  return std::string(dir ? dir : ".") + "/bin/fikit-broker";
}

// Run a shell command; return its exit code (-1 if it did not exit) and its stdout+stderr.
inline int t_run(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace fikit
