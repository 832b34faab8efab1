#include "report.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "gpu_event.h"
#include "gpu_observer.h"

namespace fikit::audit {
namespace {

uint64_t delta(uint64_t last, uint64_t first) { return last >= first ? last - first : 0; }

// Slot of the observer's counters map for each drop reason (enum fikit_counter).
const std::pair<const char*, uint32_t> kDropSlots[] = {
    {"ring_buffer_full", FIKIT_CNT_DROP_RINGBUF}, {"stats_map_full", FIKIT_CNT_DROP_STATS},
    {"object_map_full", FIKIT_CNT_DROP_OBJECTS},  {"no_task_storage", FIKIT_CNT_DROP_INFLIGHT},
    {"unreadable_params", FIKIT_CNT_READ_FAIL},
};

bool is_ioctl_program(const std::string& name) {
  return name == "fikit_ioctl_in" || name == "fikit_ioctl_out";
}

void add_program_rates(const Sample& a, const Sample& b, Report* r) {
  std::map<uint32_t, const bpf::ProgramSample*> before;
  for (const auto& p : a.programs) before[p.id] = &p;
  const double dt_ns = r->interval_s * 1e9;
  for (const auto& p : b.programs) {
    ProgramRate rate;
    rate.last = p;
    auto it = before.find(p.id);  // a program loaded meanwhile counts from zero
    rate.runs = delta(p.run_cnt, it == before.end() ? 0 : it->second->run_cnt);
    rate.run_time_ns = delta(p.run_time_ns, it == before.end() ? 0 : it->second->run_time_ns);
    rate.events_per_s = rate.runs / r->interval_s;
    rate.ns_per_run = rate.runs ? static_cast<double>(rate.run_time_ns) / rate.runs : 0;
    rate.cpu_percent = 100.0 * rate.run_time_ns / dt_ns;
    r->programs.push_back(rate);
  }
}

void add_counters(const Sample& a, const Sample& b, Report* r) {
  std::map<std::string, uint64_t> drops;
  for (const auto& [id, last] : b.counters) {
    auto it = a.counters.find(id);
    auto slot = [&](uint32_t i) {
      const uint64_t before = it != a.counters.end() && i < it->second.size() ? it->second[i] : 0;
      return i < last.size() ? delta(last[i], before) : 0;
    };
    r->traced_ioctls += slot(FIKIT_CNT_TRACED);
    for (const auto& [name, i] : kDropSlots) drops[name] += slot(i);
  }
  for (const auto& [name, n] : drops)
    if (n) r->drops.emplace_back(name, n);
  uint64_t ioctl_ns = 0;
  for (const ProgramRate& p : r->programs)
    if (is_ioctl_program(p.last.name)) ioctl_ns += p.run_time_ns;
  r->ns_per_traced_ioctl = r->traced_ioctls ? static_cast<double>(ioctl_ns) / r->traced_ioctls : 0;
}

void add_tenants_and_brokers(const Sample& a, const Sample& b, Report* r) {
  for (const TenantSample& t : b.tenants) {
    TenantRate rate;
    rate.last = t;
    const TenantSample* before = nullptr;
    for (const TenantSample& s : a.tenants)
      if (s.pid == t.pid && s.name == t.name) before = &s;
    rate.launches = delta(t.launches, before ? before->launches : 0);
    rate.passed_through = delta(t.passed_through, before ? before->passed_through : 0);
    rate.dropped = delta(t.dropped, before ? before->dropped : 0);
    rate.launches_per_s = rate.launches / r->interval_s;
    r->tenants.push_back(rate);
  }
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const BrokerSample& br : b.brokers) {
    for (const BrokerSample& s : a.brokers)
      if (s.pid == br.pid)
        r->brokers.push_back(
            {br.pid, 100.0 * delta(br.cpu_ticks, s.cpu_ticks) / ticks_per_s / r->interval_s});
  }
}

// The command's ioctls, most frequent first.
std::vector<bpf::IoctlStat> by_count(std::vector<bpf::IoctlStat> ioctls) {
  std::sort(ioctls.begin(), ioctls.end(),
            [](const auto& a, const auto& b) { return a.count > b.count; });
  return ioctls;
}

std::string format_command(const CommandResult& c) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "\ncommand: pid %d, %s, %" PRIu64 " GPU ioctls, %" PRIu64 " launches counted\n",
                c.pid, bpf::exit_text(c.wait_status).c_str(), c.gpu_ioctls, c.launches);
  std::string out = buf;
  if (!c.observed) return out;
  const bpf::ProcessUsage& u = c.usage;
  std::snprintf(buf, sizeof(buf),
                "  created %u clients, %u contexts, %u channels, %u streams; peak device memory "
                "%.1f MiB,\n  peak mapped %.1f MiB\n",
                u.clients_created, u.contexts_created, u.channels_created, u.streams_created,
                u.peak_device_bytes / 1048576.0, u.peak_mapped_bytes / 1048576.0);
  out += buf;
  int shown = 0;
  for (const bpf::IoctlStat& st : by_count(u.ioctls)) {
    if (shown++ == 8) break;
    std::snprintf(buf, sizeof(buf), "  %-34s %8" PRIu64 " calls %10.1f us avg\n",
                  bpf::command_name(st.driver, st.code).c_str(), st.count,
                  st.count ? st.total_ns / 1e3 / st.count : 0.0);
    out += buf;
  }
  return out;
}

nlohmann::json command_json(const CommandResult& c) {
  nlohmann::json j = {{"pid", c.pid},
                      {"wait_status", c.wait_status},
                      {"gpu_ioctls", c.gpu_ioctls},
                      {"launches", c.launches},
                      {"observed", c.observed}};
  if (!c.observed) return j;
  const bpf::ProcessUsage& u = c.usage;
  j["clients_created"] = u.clients_created;
  j["contexts_created"] = u.contexts_created;
  j["channels_created"] = u.channels_created;
  j["streams_created"] = u.streams_created;
  j["peak_device_bytes"] = u.peak_device_bytes;
  j["peak_mapped_bytes"] = u.peak_mapped_bytes;
  j["ioctls"] = nlohmann::json::array();
  for (const bpf::IoctlStat& st : by_count(u.ioctls))
    j["ioctls"].push_back({{"command", bpf::command_name(st.driver, st.code)},
                           {"count", st.count},
                           {"total_ns", st.total_ns},
                           {"failed", st.failed}});
  j["launches_by_function"] = nlohmann::json::object();
  for (const bpf::LaunchCount& l : u.launches) j["launches_by_function"][l.function] = l.count;
  return j;
}

}  // namespace

Report make_report(const Sample& first, const Sample& last) {
  Report r;
  r.interval_s = std::max(1e-9, (last.t_ns - first.t_ns) / 1e9);
  add_program_rates(first, last, &r);
  add_counters(first, last, &r);
  add_tenants_and_brokers(first, last, &r);
  return r;
}

std::string format_text(const Report& r) {
  std::string out;
  char line[160];
  auto put = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof(line), fmt, args...);
    out += line;
  };
  put("fikit-audit: %.2f s measured, BPF run-time statistics on while measuring\n\n", r.interval_s);
  if (r.programs.empty()) {
    out +=
        "no fikit BPF programs loaded: start fikit-broker (without --no-bpf), or pass "
        "--load\n";
  } else {
    put("%-6s %-18s %12s %10s %8s\n", "id", "BPF program", "events/s", "ns/run", "CPU %");
    for (const ProgramRate& p : r.programs)
      put("%-6u %-18s %12.1f %10.1f %8.4f\n", p.last.id, p.last.name.c_str(), p.events_per_s,
          p.ns_per_run, p.cpu_percent);
    put("\ntraced GPU ioctls: %" PRIu64 " (%.1f/s), %.1f ns of BPF time per traced ioctl\n",
        r.traced_ioctls, r.traced_ioctls / r.interval_s, r.ns_per_traced_ioctl);
    out += "drops:";
    if (r.drops.empty()) out += " none";
    for (const auto& [name, n] : r.drops) put(" %s %" PRIu64, name.c_str(), n);
    out += "\n";
  }
  out += "\nclient hooks:";
  if (r.tenants.empty())
    out += " no fikit tenants\n";
  else
    put("\n%-8s %-20s %-7s %12s %10s %8s\n", "pid", "tenant", "prio", "launches/s", "passed",
        "dropped");
  for (const TenantRate& t : r.tenants)
    put("%-8d %-20.20s %-7u %12.1f %10" PRIu64 " %8" PRIu64 "\n", t.last.pid, t.last.name.c_str(),
        t.last.priority, t.launches_per_s, t.passed_through, t.dropped);
  out += "broker CPU:";
  if (r.brokers.empty()) out += " no fikit-broker running";
  for (const BrokerRate& b : r.brokers) put(" pid %d %.2f %%", b.pid, b.cpu_percent);
  out += "\n";
  if (r.command.ran) out += format_command(r.command);
  if (!r.programs.empty()) {
    out += "\ncheck with bpftool (it prints totals since statistics were first on):\n";
    for (const ProgramRate& p : r.programs)
      put("  bpftool prog show id %u\n    %s\n", p.last.id, bpf::bpftool_line(p.last).c_str());
  }
  return out;
}

std::string format_json(const Report& r) {
  using nlohmann::json;
  json j;
  j["interval_s"] = r.interval_s;
  j["programs"] = json::array();
  for (const ProgramRate& p : r.programs)
    j["programs"].push_back(
        {{"id", p.last.id},
         {"name", p.last.name},
         {"type", p.last.type},
         {"runs", p.runs},
         {"run_time_ns", p.run_time_ns},
         {"events_per_s", p.events_per_s},
         {"ns_per_run", p.ns_per_run},
         {"cpu_percent", p.cpu_percent},
         {"bpftool_command", "bpftool prog show id " + std::to_string(p.last.id)},
         {"bpftool_line", bpf::bpftool_line(p.last)}});
  j["traced_ioctls"] = r.traced_ioctls;
  j["ns_per_traced_ioctl"] = r.ns_per_traced_ioctl;
  j["drops"] = json::object();
  for (const auto& [name, n] : r.drops) j["drops"][name] = n;
  j["tenants"] = json::array();
  for (const TenantRate& t : r.tenants)
    j["tenants"].push_back({{"pid", t.last.pid},
                            {"name", t.last.name},
                            {"priority", t.last.priority},
                            {"launches", t.launches},
                            {"launches_per_s", t.launches_per_s},
                            {"passed_through", t.passed_through},
                            {"dropped", t.dropped}});
  j["brokers"] = json::array();
  for (const BrokerRate& b : r.brokers)
    j["brokers"].push_back({{"pid", b.pid}, {"cpu_percent", b.cpu_percent}});
  if (r.command.ran) j["command"] = command_json(r.command);
  return j.dump(2) + "\n";
}

}  // namespace fikit::audit
