#include "status.h"

#include <fikit/abi.h>
#include <fikit/util.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "gpu/gpu_status.h"
#include "substrate/substrate_status.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

json tenant_base_json(const TenantStatus& t, uint64_t now_ns) {
  return json{{"id", t.id},
              {"pid", t.pid},
              {"uid", t.uid},
              {"name", t.name},
              {"priority", t.priority},
              {"priority_name", priority_name(t.priority)},
              {"state", state_name(t.state)},
              {"fault", t.fault},
              {"launches", t.launches},
              {"granted", t.granted},
              {"passed_through", t.passed_through},
              {"dropped", t.dropped},
              {"expired", t.expired},
              {"lp_waiting", t.lp_waiting},
              {"lp_in_flight", t.lp_in_flight},
              {"outstanding", t.outstanding},
              {"age_s", static_cast<double>(now_ns - t.admitted_ns) * 1e-9}};
}

json tenant_json(const TenantStatus& t, uint64_t now_ns) {
  json j = tenant_base_json(t, now_ns);
  // The policy's statistics (PolicyOps::tenant_stats), if it keeps any.
  json stats = json::parse(t.policy_json.empty() ? "{}" : t.policy_json, nullptr, false);
  if (!stats.is_object()) stats = json::object();
  j["policy"] = std::move(stats);
  j["policy_text"] = t.policy_text;
  return j;
}

// A count in at most 6 columns: exact below a million, then 12.3M / 123G.
std::string compact(uint64_t v) {
  char buf[32];
  if (v < 1'000'000) {
    snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(v));
    return buf;
  }
  const char* units = "MGTPE";
  double x = static_cast<double>(v) / 1e6;
  while (x >= 1000 && units[1]) {
    x /= 1000;
    units++;
  }
  snprintf(buf, sizeof(buf), x < 100 ? "%.1f%c" : "%.0f%c", x, *units);
  return buf;
}

std::string duration(double s) {
  auto t = static_cast<unsigned long long>(s);
  char buf[48];
  if (t >= 86400)
    snprintf(buf, sizeof(buf), "%llud%02lluh%02llum", t / 86400, t / 3600 % 24, t / 60 % 60);
  else if (t >= 3600)
    snprintf(buf, sizeof(buf), "%lluh%02llum%02llus", t / 3600, t / 60 % 60, t % 60);
  else if (t >= 60)
    snprintf(buf, sizeof(buf), "%llum%02llus", t / 60, t % 60);
  else
    snprintf(buf, sizeof(buf), "%.1fs", s);
  return buf;
}

std::string table_row(const json& t) {
  char buf[160];
  std::string name = t.at("name").get<std::string>().substr(0, 14);
  snprintf(buf, sizeof(buf), "%3u %7d %-14s %-7s %-6s %6s %6s %6s %6s %4u %4u\n",
           t.at("id").get<unsigned>(), t.at("pid").get<int>(), name.c_str(),
           t.at("priority_name").get<std::string>().c_str(),
           t.at("state").get<std::string>().c_str(),
           compact(t.at("launches").get<uint64_t>()).c_str(),
           compact(t.at("granted").get<uint64_t>()).c_str(),
           compact(t.at("passed_through").get<uint64_t>()).c_str(),
           compact(t.at("dropped").get<uint64_t>()).c_str(), t.at("lp_waiting").get<unsigned>(),
           t.at("lp_in_flight").get<unsigned>());
  return buf;
}

}  // namespace

const char* state_name(TenantState s) {
  switch (s) {
    case TenantState::kConnecting:
      return "connecting";
    case TenantState::kActive:
      return "active";
    case TenantState::kFaulty:
      return "faulty";
    case TenantState::kClosed:
      return "closed";
  }
  return "unknown";
}

std::string status_json(const BrokerInfo& info, const std::vector<TenantStatus>& tenants,
                        uint64_t now_ns, size_t max_len) {
  json broker{{"pid", info.pid},
              {"uid", info.uid},
              {"socket", info.socket},
              {"policy", info.policy},
              {"uptime_s", static_cast<double>(info.uptime_ns) * 1e-9},
              {"scheduler_cpu_s", info.scheduler_cpu_s},
              {"process_cpu_s", info.process_cpu_s},
              {"spin_us", info.spin_us},
              {"abi", std::to_string(kAbiMajor) + "." + std::to_string(kAbiMinor)},
              {"tenants", tenants.size()},
              {"tenants_omitted", 0}};
  json doc{{"broker", broker}, {"tenants", json::array()}};
  size_t len = doc.dump().size() + 16;
  size_t omitted = 0;
  for (const TenantStatus& t : tenants) {
    json j = tenant_json(t, now_ns);
    size_t add = j.dump().size() + 1;
    if (omitted > 0 || len + add > max_len) {
      omitted++;
      continue;
    }
    len += add;
    doc["tenants"].push_back(std::move(j));
  }
  doc["broker"]["tenants_omitted"] = omitted;
  return doc.dump();
}

Result<std::string> status_text(const std::string& text) {
  try {
    json doc = json::parse(text);
    const json& b = doc.at("broker");
    double up = b.at("uptime_s").get<double>();
    double cpu = b.at("scheduler_cpu_s").get<double>();
    char head[512];
    snprintf(head, sizeof(head),
             "fikit-broker pid %d (uid %u), up %s, policy %s, ABI %s\n"
             "socket %s\n"
             "scheduler CPU %.3f s (%.2f%% of uptime), broker CPU %.3f s\n",
             b.at("pid").get<int>(), b.at("uid").get<unsigned>(), duration(up).c_str(),
             b.at("policy").get<std::string>().c_str(), b.at("abi").get<std::string>().c_str(),
             b.at("socket").get<std::string>().c_str(), cpu, up > 0 ? 100 * cpu / up : 0.0,
             b.at("process_cpu_s").get<double>());
    std::string out = head + substrate_status_text(doc);
    if (doc.contains("degraded") && doc["degraded"].is_array())
      for (const json& d : doc["degraded"]) out += "degraded: " + d.get<std::string>() + "\n";
    const json& tenants = doc.at("tenants");
    out += std::to_string(b.at("tenants").get<size_t>()) + " tenant(s)\n";
    if (tenants.empty()) return out + gpu_status_text(doc);
    char cols[96];
    snprintf(cols, sizeof(cols), "\n%3s %7s %-14s %-7s %-6s %6s %6s %6s %6s %4s %4s\n", "ID", "PID",
             "NAME", "PRIO", "STATE", "LAUNCH", "GRANT", "PASS", "DROP", "WAIT", "INFL");
    out += cols;
    std::string faults;
    for (const json& t : tenants) {
      out += table_row(t);
      out += t.value("policy_text", std::string());  // older brokers: none
      if (!t.at("fault").get<std::string>().empty())
        faults += "tenant " + std::to_string(t.at("id").get<unsigned>()) +
                  " faulty: " + t.at("fault").get<std::string>() + "\n";
    }
    if (size_t n = b.at("tenants_omitted").get<size_t>(); n > 0)
      out += "(" + std::to_string(n) + " more not shown: use --json)\n";
    return out + faults + gpu_status_text(doc);
  } catch (const nlohmann::json::exception& e) {
    return Status(StatusCode::kInternal,
                  std::string("failed to parse the broker's status: ") + e.what());
  }
}

}  // namespace fikit::broker
