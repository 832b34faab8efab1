#include "control/status.h"

#include <fikit/abi.h>
#include <fikit/util.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "gpu/gpu_status.h"
#include "sched/idle_status.h"
#include "substrate/substrate_status.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

// How the table draws each status part's member: above the tenant table or below it.
struct PartView {
  const char* key;
  bool above_tenants;
  std::string (*text)(const json& value);
};

constexpr PartView kPartViews[] = {
    {"substrate", true, substrate_status_text},
    {"hp_idle", true, idle_status_text},
    {"gpu", false, gpu_status_text},
};

// The lines of the parts in `doc` drawn above (or below) the tenant table.
std::string parts_text(const json& doc, bool above_tenants) {
  std::string out;
  for (const PartView& v : kPartViews)
    if (v.above_tenants == above_tenants && doc.contains(v.key)) out += v.text(doc.at(v.key));
  return out;
}

json kube_json(const KubeRef& k) {
  return json{{"pod_uid", k.pod_uid},
              {"container_id", k.container_id},
              {"pod", k.pod},
              {"namespace", k.ns},
              {"container", k.container}};
}

// Cumulative counts per upper bound (seconds), as the metrics' histogram wants them.
json latency_json(const LatencyHistogram& h) {
  json le = json::array(), cumulative = json::array();
  uint64_t sum = 0;
  for (size_t i = 0; i < LatencyHistogram::kUpperNs.size(); i++) {
    le.push_back(static_cast<double>(LatencyHistogram::kUpperNs[i]) /
                 1e9);  // 2.5e-05, not 2.5000000000000001e-05
    cumulative.push_back(sum += h.counts[i]);
  }
  return json{{"count", h.count},
              {"sum_s", static_cast<double>(h.sum_ns) * 1e-9},
              {"le_s", le},
              {"cumulative", cumulative}};
}

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
              {"burst_granted", t.burst_granted},
              {"passed_through", t.passed_through},
              {"dropped", t.dropped},
              {"expired", t.expired},
              {"lp_waiting", t.lp_waiting},
              {"lp_in_flight", t.lp_in_flight},
              {"outstanding", t.outstanding},
              {"busy_s", static_cast<double>(t.busy_ns) * 1e-9},
              {"age_s", static_cast<double>(now_ns - t.admitted_ns) * 1e-9}};
}

json tenant_json(const TenantStatus& t, const TenantRate* rate, uint64_t now_ns) {
  json j = tenant_base_json(t, now_ns);
  j["gpu"] = t.gpu;  // its GPU's index in "gpus" (one registration per GPU it uses)
  j["launches_per_s"] = rate ? rate->launches_per_s : 0.0;
  j["grants_per_s"] = rate ? rate->grants_per_s : 0.0;
  j["rate_window_s"] = rate ? rate->window_s : 0.0;
  if (!t.kube.pod_uid.empty()) j["kubernetes"] = kube_json(t.kube);
  if (t.grant_latency.count > 0) j["grant_latency"] = latency_json(t.grant_latency);
  // The policy's statistics (PolicyOps::tenant_stats), if it keeps any.
  json stats = json::parse(t.policy_json.empty() ? "{}" : t.policy_json, nullptr, false);
  if (!stats.is_object()) stats = json::object();
  // The HP budget's members (docs/STATUS.md) belong to the tenant, whichever policy keeps them.
  for (const char* key :
       {"request_latency", "alone_latency", "slowdown", "hp_budget", "harvest_ratio"})
    if (auto it = stats.find(key); it != stats.end()) {
      j[key] = *it;
      stats.erase(it);
    }
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

// A rate in at most 6 columns: 0, 0.52, 12.3, 1234, 12.3k, 1.2M.
std::string rate(double v) {
  char buf[32];
  if (v <= 0) return "0";
  if (v < 10)
    snprintf(buf, sizeof(buf), "%.2f", v);
  else if (v < 100)
    snprintf(buf, sizeof(buf), "%.1f", v);
  else if (v < 10'000)
    snprintf(buf, sizeof(buf), "%.0f", v);
  else if (v < 1e6)
    snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else if (v < 1e9)
    snprintf(buf, sizeof(buf), "%.1fM", v / 1e6);
  else
    snprintf(buf, sizeof(buf), "%.0fG", v / 1e9);
  return buf;
}

// `name` in at most `width` bytes: control bytes shown as '?', a longer name cut with '~' at its
// end (at a UTF-8 character boundary).
std::string fit_name(std::string name, size_t width) {
  for (char& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (name.size() <= width) return name;
  size_t cut = width - 1;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xc0) == 0x80) cut--;
  return name.substr(0, cut) + "~";
}

constexpr const char* kRowFormat = "%3u %7d %-14s %-7s %-6.6s %6s %6s %6s %6s %4u %4u\n";
constexpr const char* kHeadFormat = "%3s %7s %-14s %-7s %-6s %6s %6s %6s %6s %4s %4s\n";

std::string table_row(const json& t) {
  char buf[200];
  snprintf(
      buf, sizeof(buf), kRowFormat, t.at("id").get<unsigned>(), t.at("pid").get<int>(),
      fit_name(t.at("name").get<std::string>(), 14).c_str(),
      t.at("priority_name").get<std::string>().c_str(), t.at("state").get<std::string>().c_str(),
      compact(t.at("launches").get<uint64_t>()).c_str(),
      rate(t.value("launches_per_s", 0.0)).c_str(),
      compact(t.at("granted").get<uint64_t>()).c_str(), rate(t.value("grants_per_s", 0.0)).c_str(),
      t.at("lp_waiting").get<unsigned>(), t.at("lp_in_flight").get<unsigned>());
  std::string out = buf;
  // The counters that say something went around the broker, when they are not zero.
  std::string notes;
  auto note = [&](const char* key, const char* what) {
    if (uint64_t n = t.value(key, uint64_t{0}); n > 0)
      notes += (notes.empty() ? "" : ", ") + std::string(what) + " " + std::to_string(n);
  };
  note("passed_through", "passed through");
  note("dropped", "dropped");
  note("expired", "expired");
  if (!notes.empty()) out += "    " + notes + "\n";
  return out;
}

// `text` with every line longer than `width` broken at spaces (or, with none, at `width`); a
// continuation is indented two columns more than its line.
std::string wrap(const std::string& text, size_t width) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    const size_t indent = std::min<size_t>(line.find_first_not_of(' ') + 2, width / 2);
    while (line.size() > width) {
      size_t cut = line.rfind(' ', width);
      if (cut == std::string::npos || cut <= indent) cut = width;
      out += line.substr(0, cut) + "\n";
      size_t rest = line.find_first_not_of(' ', cut);
      line = std::string(indent, ' ') + (rest == std::string::npos ? "" : line.substr(rest));
    }
    out += line;
    if (end < text.size()) out += "\n";
    start = end + 1;
  }
  return out;
}

std::string header(const json& doc) {
  const json& b = doc.at("broker");
  double up = b.at("uptime_s").get<double>();
  double cpu = b.at("scheduler_cpu_s").get<double>();
  std::string version = doc.value("version", std::string());
  char head[1024];
  snprintf(head, sizeof(head),
           "fikit-broker%s%s pid %d (uid %u), up %s, policy %s, ABI %s\n"
           "socket %s\n"
           "scheduler CPU %.3f s (%.2f%% of uptime), broker CPU %.3f s\n",
           version.empty() ? "" : " ", version.c_str(), b.at("pid").get<int>(),
           b.at("uid").get<unsigned>(), duration(up).c_str(),
           b.at("policy").get<std::string>().c_str(), b.at("abi").get<std::string>().c_str(),
           b.at("socket").get<std::string>().c_str(), cpu, up > 0 ? 100 * cpu / up : 0.0,
           b.at("process_cpu_s").get<double>());
  std::string out = head;
  if (doc.contains("gpus"))
    for (const json& g : doc.at("gpus"))
      if (!g.value("uuid", std::string()).empty())
        out += "GPU " + std::to_string(g.value("index", 0)) + ": " +
               g.value("model", std::string()) + " " + g.value("uuid", std::string()) + "\n";
  if (doc.contains("degraded") && doc["degraded"].is_array())
    for (const json& d : doc["degraded"]) out += "degraded: " + d.get<std::string>() + "\n";
  return out;
}

std::string tenants_text(const json& doc) {
  const json& b = doc.at("broker");
  const json& tenants = doc.at("tenants");
  std::string out = std::to_string(b.at("tenants").get<size_t>()) + " tenant(s)";
  double window = 0;
  for (const json& t : tenants) window = std::max(window, t.value("rate_window_s", 0.0));
  if (window > 0) {
    char buf[64];
    snprintf(buf, sizeof(buf), "; rates per second over the last %s", duration(window).c_str());
    out += buf;
  }
  out += "\n";
  if (tenants.empty()) return out;
  char cols[128];
  snprintf(cols, sizeof(cols), kHeadFormat, "ID", "PID", "NAME", "PRIO", "STATE", "LAUNCH", "L/s",
           "GRANT", "G/s", "WAIT", "INFL");
  out += "\n" + std::string(cols);
  std::string faults;
  // With several GPUs, the tenants under a line per GPU (each GPU is its own scheduling domain).
  const size_t ngpus = doc.contains("gpus") ? doc.at("gpus").size() : 1;
  for (size_t g = 0; g < std::max<size_t>(ngpus, 1); g++) {
    bool header = false;
    for (const json& t : tenants) {
      if (ngpus > 1 && t.value("gpu", size_t{0}) != g) continue;
      if (ngpus > 1 && !header) {
        std::string uuid = doc["gpus"][g].value("uuid", std::string());
        out += "GPU " + std::to_string(g) + (uuid.empty() ? "" : " " + uuid) + "\n";
        header = true;
      }
      out += table_row(t);
      out += t.value("policy_text", std::string());  // older brokers: none
      if (!t.at("fault").get<std::string>().empty())
        faults += "tenant " + std::to_string(t.at("id").get<unsigned>()) +
                  " faulty: " + t.at("fault").get<std::string>() + "\n";
    }
  }
  if (size_t n = b.at("tenants_omitted").get<size_t>(); n > 0)
    out += "(" + std::to_string(n) + " more not shown: use --json)\n";
  return out + faults;
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

json status_document(const StatusInput& in) {
  const BrokerInfo& info = in.info;
  json broker{{"pid", info.pid},
              {"uid", info.uid},
              {"socket", info.socket},
              {"policy", info.policy},
              {"uptime_s", static_cast<double>(info.uptime_ns) * 1e-9},
              {"scheduler_cpu_s", info.scheduler_cpu_s},
              {"process_cpu_s", info.process_cpu_s},
              {"spin_us", info.spin_us},
              {"abi", std::to_string(kAbiMajor) + "." + std::to_string(kAbiMinor)},
              {"tenants", in.tenants.size()},
              {"tenants_omitted", 0}};
  json gpus = json::array();
  if (info.gpus.empty())
    gpus.push_back(json{{"index", 0},
                        {"uuid", info.gpu_uuid},
                        {"model", info.gpu_model},
                        {"tenants", json::array()}});
  for (size_t i = 0; i < info.gpus.size(); i++)
    gpus.push_back(json{{"index", i},
                        {"uuid", info.gpus[i].uuid},
                        {"model", info.gpus[i].model},
                        {"tenants", json::array()}});
  json doc{{"schema_version", kStatusSchemaVersion},
           {"time", info.unix_time},
           {"version", FIKIT_VERSION},
           {"broker", broker},
           {"gpus", std::move(gpus)},
           {"tenants", json::array()}};
  size_t len = doc.dump().size() + 16;
  for (const StatusPart& p : in.parts) {
    json value = p.value(in.now_ns, in.max_len > len ? in.max_len - len : 0);
    size_t add = p.key.size() + 4 + value.dump().size();
    if (value.is_null() || len + add > in.max_len) continue;
    len += add;
    doc[p.key] = std::move(value);
  }
  size_t omitted = 0;
  for (const TenantStatus& t : in.tenants) {
    json& all = doc["gpus"];
    while (all.size() <= t.gpu)
      all.push_back(
          json{{"index", all.size()}, {"uuid", ""}, {"model", ""}, {"tenants", json::array()}});
    json& listed = all[t.gpu]["tenants"];
    auto r = in.rates.find(t.id);
    json j = tenant_json(t, r == in.rates.end() ? nullptr : &r->second, in.now_ns);
    size_t add = j.dump().size() + 1 + 11;  // and its id in gpus[gpu].tenants
    if (omitted > 0 || len + add > in.max_len) {
      omitted++;
      continue;
    }
    len += add;
    listed.push_back(t.id);
    doc["tenants"].push_back(std::move(j));
  }
  doc["broker"]["tenants_omitted"] = omitted;
  if (!in.departed.empty()) {
    json& gone = doc["departed_tenants"] = json::array();
    for (const TenantStatus& t : in.departed) gone.push_back(tenant_json(t, nullptr, in.now_ns));
  }
  return doc;
}

std::string status_json(const StatusInput& in) { return status_document(in).dump(); }

std::string status_json(const BrokerInfo& info, const std::vector<TenantStatus>& tenants,
                        uint64_t now_ns, size_t max_len, const std::vector<StatusPart>& parts) {
  return status_json(StatusInput{info, tenants, {}, {}, parts, now_ns, max_len});
}

Result<std::string> status_text(const std::string& text) {
  try {
    json doc = json::parse(text);
    std::string out =
        header(doc) + parts_text(doc, true) + tenants_text(doc) + parts_text(doc, false);
    return wrap(out, 80);
  } catch (const nlohmann::json::exception& e) {
    return Status(StatusCode::kInternal,
                  std::string("failed to parse the broker's status: ") + e.what());
  }
}

std::string status_legend() {
  return R"(STATUS
  The tenant table of `status` (docs/STATUS.md has every field of --json):
    PRIO    high, normal, low, level 3 .. level 7 (high is the HP level)
    STATE   active, or faulty (it sent something invalid: it runs unmanaged)
    LAUNCH  launches the broker has seen (HP records and LP requests)
    GRANT   LP launches granted
    L/s G/s launches and grants per second, over the time since the previous
            status at least 1 s earlier (or since the tenant registered)
    WAIT    LP requests waiting for a grant now
    INFL    LP launches granted and not yet seen complete
    name~   a name cut to fit (--json has all of it)
  Under a row, when not 0: passed through (launched without the broker: it was
  away, or the stream was capturing), dropped (HP records lost to a full ring),
  expired (grants not launched within 100 ms, taken back).
  The fikit policy's lines (docs/POLICY.md "Statistics"): kernels and keys
  (kernel identities of the tenant, of the cap); gaps: hit (the LP work put in
  fit), miss, fill-miss (the HP came back while LP work was still running);
  gap pred/actual (mean predicted and actual gap); LP into gaps (grants into
  this tenant's gaps and their GPU time); as LP: fill (grants into gaps), full
  (at full speed, nothing above busy); overruns (LP work that outlasted its
  gap); wait (request to grant); held (time its requests waited) above-busy (a
  level above was busy), no-room (no gap with room for the kernel), unknown
  (kernel length not known yet), in-flight (at the LP in-flight limit);
  markers (1 in N HP launches carries a completion marker).
  Exit status of `status`: 0; 3 if no broker runs on the socket (with --json it
  prints {"running": false}); 1 if it did not answer or its reply was bad.
)";
}

}  // namespace fikit::broker
