#include "gpu/gpu_status.h"

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace fikit::broker {
namespace {

using nlohmann::json;

json exit_code(const GpuProcessInfo& p) {
  if (!p.exited || p.exit_status < 0 || !WIFEXITED(p.exit_status)) return nullptr;
  return WEXITSTATUS(p.exit_status);
}

json exit_signal(const GpuProcessInfo& p) {
  if (!p.exited || p.exit_status < 0 || !WIFSIGNALED(p.exit_status)) return nullptr;
  return WTERMSIG(p.exit_status);
}

json shares_json(const GpuProcessInfo& p) {
  json out = json::array();
  for (const GpuProcessShare& s : p.gpus)
    out.push_back({{"minor", s.minor >= 0 ? json(s.minor) : json(nullptr)},
                   {"index", s.index >= 0 ? json(s.index) : json(nullptr)},
                   {"uuid", s.uuid},
                   {"contexts", s.contexts},
                   {"device_bytes", s.device_bytes}});
  return out;
}

json process_json(const GpuProcessInfo& p, uint64_t now_ns) {
  return json{
      {"pid", p.pid},
      {"name", p.name},
      {"kind", process_kind_name(p.kind)},
      {"tenant", p.tenant},
      {"uid", p.uid >= 0 ? json(p.uid) : json(nullptr)},
      {"state", p.exited ? "exited" : "running"},
      {"exit_code", exit_code(p)},
      {"exit_signal", exit_signal(p)},
      {"clients", p.clients},
      {"contexts", p.contexts},
      {"channels", p.channels},
      {"streams", p.streams},
      {"contexts_created", p.contexts_created},
      {"streams_created", p.streams_created},
      {"device_bytes", p.device_bytes},
      {"mapped_bytes", p.mapped_bytes},
      {"peak_device_bytes", p.peak_device_bytes},
      {"peak_mapped_bytes", p.peak_mapped_bytes},
      {"ioctls", p.ioctls},
      {"ioctl_ms", static_cast<double>(p.ioctl_ns) * 1e-6},
      {"audited", p.audited},
      {"launches", p.launches},
      {"gpus", shares_json(p)},
      {"age_s",
       p.first_ns && now_ns > p.first_ns ? static_cast<double>(now_ns - p.first_ns) * 1e-9 : 0.0}};
}

// Bytes in at most 8 columns, binary units: 0, 512K, 776M, 1.1G.
std::string bytes(uint64_t v) {
  const char* units = "BKMGTPE";
  double x = static_cast<double>(v);
  while (x >= 1024 && units[1]) {
    x /= 1024;
    units++;
  }
  char buf[32];
  if (v == 0)
    snprintf(buf, sizeof(buf), "0");
  else
    snprintf(buf, sizeof(buf), x < 10 && *units != 'B' ? "%.1f%c" : "%.0f%c", x, *units);
  return buf;
}

std::string state_text(const json& p) {
  if (p.at("state").get<std::string>() == "running") return "running";
  if (!p.at("exit_code").is_null()) return "exit " + std::to_string(p.at("exit_code").get<int>());
  if (!p.at("exit_signal").is_null())
    return "signal " + std::to_string(p.at("exit_signal").get<int>());
  return "exit ?";
}

std::string process_row(const json& p) {
  std::string kind = p.at("kind").get<std::string>();
  std::string tenant = kind == "tenant"       ? std::to_string(p.at("tenant").get<unsigned>())
                       : kind == "unmanaged"  ? "UNMGD"
                       : kind == "mps-server" ? "MPS"
                                              : "-";
  std::string name = p.at("name").get<std::string>().substr(0, 14);
  char buf[160];
  snprintf(buf, sizeof(buf), "%7d %-14s %6s %-9s %4u %4u %4u %8s %8s %6llu\n",
           p.at("pid").get<int>(), name.c_str(), tenant.c_str(), state_text(p).c_str(),
           p.at("contexts").get<unsigned>(), p.at("channels").get<unsigned>(),
           p.at("streams").get<unsigned>(), bytes(p.at("device_bytes").get<uint64_t>()).c_str(),
           bytes(p.at("peak_device_bytes").get<uint64_t>()).c_str(),
           static_cast<unsigned long long>(p.at("ioctls").get<uint64_t>()));
  return buf;
}

std::string observer_line(const json& g) {
  std::string state = g.at("observer").get<std::string>();
  std::string reason = g.at("reason").get<std::string>();
  if (state == "disabled") return "\nGPU observer: disabled (" + reason + ")\n";
  if (state == "failed")
    return "\nGPU observer: failed to load, running without it: " + reason + "\n";
  char buf[256];
  snprintf(buf, sizeof(buf), "\nGPU observer: loaded%s%s, %llu ioctls traced\n",
           g.at("audit").get<bool>() ? ", auditing unmanaged launches" : "",
           g.at("test_device").get<std::string>().empty()
               ? ""
               : (" (test device " + g.at("test_device").get<std::string>() + ")").c_str(),
           static_cast<unsigned long long>(g.at("traced_ioctls").get<uint64_t>()));
  std::string out = buf;
  if (uint64_t n = g.at("dropped").get<uint64_t>(); n > 0)
    out += "warning: the observer lost " + std::to_string(n) +
           " event(s) or entries (maps or ring buffer full): GPU counts may be off\n";
  if (uint64_t n = g.at("impossible").get<uint64_t>(); n > 0)
    out += "warning: " + std::to_string(n) + " impossible state(s) at gpu_observer.bpf.c:" +
           std::to_string(g.at("impossible_line").get<unsigned>()) + "\n";
  return out;
}

// One line per GPU of a running process: "pid 646: GPU 0 GPU-8c1d... 4 ctx 776M", and
// "pid 646: unattributed 1 ctx 2.0M" for what the observer could not place on a GPU.
std::string shares_lines(const json& p) {
  if (p.at("state").get<std::string>() != "running") return "";
  std::string out;
  for (const json& g : p.value("gpus", json::array())) {
    std::string who;
    if (g.at("minor").is_null())
      who = "unattributed";
    else if (!g.at("index").is_null())
      who =
          "GPU " + std::to_string(g.at("index").get<int>()) + " " + g.at("uuid").get<std::string>();
    else
      who = "/dev/nvidia" + std::to_string(g.at("minor").get<int>());
    out += "pid " + std::to_string(p.at("pid").get<int>()) + ": " + who + " " +
           std::to_string(g.at("contexts").get<unsigned>()) + " ctx " +
           bytes(g.at("device_bytes").get<uint64_t>()) + "\n";
  }
  return out;
}

}  // namespace

void name_gpus(std::vector<GpuProcessShare>* shares, const std::vector<GpuIdentity>& gpus) {
  for (GpuProcessShare& s : *shares)
    for (size_t i = 0; i < gpus.size(); i++)
      if (s.minor >= 0 && gpus[i].minor == static_cast<uint32_t>(s.minor)) {
        s.index = static_cast<int32_t>(i);
        s.uuid = gpus[i].uuid;
      }
}

const char* observer_state_name(GpuObserverState s) {
  switch (s) {
    case GpuObserverState::kDisabled:
      return "disabled";
    case GpuObserverState::kLoaded:
      return "loaded";
    case GpuObserverState::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* process_kind_name(GpuProcessKind k) {
  switch (k) {
    case GpuProcessKind::kTenant:
      return "tenant";
    case GpuProcessKind::kUnmanaged:
      return "unmanaged";
    case GpuProcessKind::kMpsServer:
      return "mps-server";
    case GpuProcessKind::kOther:
      return "other";
  }
  return "unknown";
}

json gpu_status_json(const GpuObserverInfo& info, const std::vector<GpuProcessInfo>& procs,
                     uint64_t now_ns, size_t max_len) {
  size_t unmanaged = 0;
  for (const GpuProcessInfo& p : procs)
    unmanaged += p.kind == GpuProcessKind::kUnmanaged && !p.exited;
  json doc{{"observer", observer_state_name(info.state)},
           {"reason", info.reason},
           {"audit", info.audit},
           {"test_device", info.test_device},
           {"nvidia_major", info.nvidia_major},
           {"uvm_major", info.uvm_major},
           {"traced_ioctls", info.traced_ioctls},
           {"events", info.events},
           {"dropped", info.dropped},
           {"impossible", info.impossible},
           {"impossible_line", info.impossible_line},
           {"run_stats", info.run_stats},
           {"programs", json::array()},
           {"unmanaged", unmanaged},
           {"processes_omitted", 0},
           {"processes", json::array()}};
  for (const GpuObserverInfo::Program& p : info.programs)
    doc["programs"].push_back(
        {{"id", p.id}, {"name", p.name}, {"runs", p.runs}, {"run_ns", p.run_ns}});
  size_t len = doc.dump().size() + 16;
  size_t omitted = 0;
  for (const GpuProcessInfo& p : procs) {
    json j = process_json(p, now_ns);
    size_t add = j.dump().size() + 1;
    if (omitted > 0 || len + add > max_len) {
      omitted++;
      continue;
    }
    len += add;
    doc["processes"].push_back(std::move(j));
  }
  doc["processes_omitted"] = omitted;
  return doc;
}

std::string gpu_status_text(const json& g) {
  std::string out = observer_line(g);
  const json& procs = g.at("processes");
  if (g.at("observer").get<std::string>() != "loaded") return out;
  out += std::to_string(procs.size()) + " GPU process(es), " +
         std::to_string(g.at("unmanaged").get<size_t>()) + " unmanaged\n";
  if (procs.empty()) return out;
  char cols[128];
  snprintf(cols, sizeof(cols), "\n%7s %-14s %6s %-9s %4s %4s %4s %8s %8s %6s\n", "PID", "NAME",
           "TENANT", "STATE", "CTX", "CHAN", "STRM", "DEVMEM", "PEAK", "IOCTL");
  out += cols;
  std::string notes;
  bool any_unmanaged = false;
  for (const json& p : procs) {
    out += process_row(p);
    notes += shares_lines(p);
    any_unmanaged |= p.at("kind").get<std::string>() == "unmanaged";
    if (p.at("audited").get<bool>())
      notes += "pid " + std::to_string(p.at("pid").get<int>()) + ": " +
               std::to_string(p.at("launches").get<uint64_t>()) + " kernel launches (audited)\n";
  }
  if (size_t n = g.at("processes_omitted").get<size_t>(); n > 0)
    out += "(" + std::to_string(n) + " more not shown: use --json)\n";
  if (size_t n = g.value("processes_of_others", size_t{0}); n > 0)
    out += "(" + std::to_string(n) + " of other users not shown)\n";
  if (any_unmanaged)
    notes +=
        "UNMGD: a GPU process that is not a tenant; the broker cannot schedule its\n"
        "       kernels (run it with fikit-run)\n";
  return out + notes;
}

}  // namespace fikit::broker
