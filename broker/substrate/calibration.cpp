#include "substrate/calibration.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "substrate/subprocess.h"

namespace fikit::broker {
namespace {

// key=value pairs of one line; a value may be "double quoted".
std::map<std::string, std::string> parse_pairs(const std::string& line) {
  std::map<std::string, std::string> kv;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') i++;
    size_t eq = line.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = line.substr(i, eq - i);
    size_t end;
    if (eq + 1 < line.size() && line[eq + 1] == '"') {
      end = line.find('"', eq + 2);
      if (end == std::string::npos) end = line.size();
      kv[key] = line.substr(eq + 2, end - eq - 2);
      end++;
    } else {
      end = line.find(' ', eq);
      if (end == std::string::npos) end = line.size();
      kv[key] = line.substr(eq + 1, end - eq - 1);
    }
    i = end;
  }
  return kv;
}

}  // namespace

std::string calibrate_program() {
  const char* env = getenv("FIKIT_CALIBRATE");
  if (env && *env) return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "fikit-calibrate";
  std::string dir(self, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/')) + "/fikit-calibrate";
}

Calibration run_calibration(const std::string& program, const std::vector<std::string>& env,
                            uint64_t timeout_ms) {
  Calibration c;
  if (access(program.c_str(), X_OK) != 0) {
    c.detail = program + " not found (build it with the broker, or set FIKIT_CALIBRATE)";
    return c;
  }
  ProcessSpec spec{{program, "--budget-ms", "500"}, env, {"CUDA_MPS_*"}, "", timeout_ms};
  Result<ProcessResult> r = run_process(spec);
  if (!r.ok()) {
    c.detail = r.status().message();
    return c;
  }
  std::string line = last_line(r->output);
  if (r->timed_out) {
    c.detail = "no result within " + std::to_string(timeout_ms) + " ms" +
               (line.empty() ? "" : " (" + line + ")");
    return c;
  }
  std::map<std::string, std::string> kv = parse_pairs(line);
  char* end = nullptr;
  double v = kv.count("switch_back_us") ? strtod(kv["switch_back_us"].c_str(), &end) : 0;
  if (r->exit_code != 0 || !end || *end != '\0') {
    c.detail = "exit " + std::to_string(r->exit_code) + (line.empty() ? "" : ": " + line);
    return c;
  }
  c.ok = true;
  c.switch_us = v;
  c.device = kv["device"];
  c.uuid = kv["uuid"];
  c.driver = kv["driver"];
  c.detail = line;
  return c;
}

std::vector<GpuIdentity> list_driver_gpus(const std::string& program,
                                          const std::vector<std::string>& env,
                                          uint64_t timeout_ms) {
  std::vector<GpuIdentity> out;
  if (access(program.c_str(), X_OK) != 0) return out;
  ProcessSpec spec{{program, "--list"}, env, {"CUDA_MPS_*"}, "", timeout_ms};
  Result<ProcessResult> r = run_process(spec);
  if (!r.ok() || r->timed_out || r->exit_code != 0) return out;
  size_t start = 0;
  while (start < r->output.size()) {
    size_t end = r->output.find('\n', start);
    if (end == std::string::npos) end = r->output.size();
    std::map<std::string, std::string> kv = parse_pairs(r->output.substr(start, end - start));
    start = end + 1;
    if (!kv.count("uuid") || kv["uuid"].rfind("GPU-", 0) != 0) continue;
    GpuIdentity g;
    g.minor = static_cast<uint32_t>(out.size());
    g.uuid = kv["uuid"];
    g.model = kv["name"];
    g.driver = kv["driver"];
    out.push_back(g);
  }
  return out;
}

}  // namespace fikit::broker
