#include "view.h"

#include <algorithm>
#include <cstdio>

namespace fikit::top {
namespace {

using nlohmann::json;

constexpr size_t kHistory = 120;

uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

uint64_t policy_u64(const json& t, const char* key) {
  auto p = t.find("policy");
  return p != t.end() && p->is_object() ? u64(*p, key) : 0;
}

std::string fit(std::string s, size_t width) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (s.size() <= width) return s;
  size_t cut = width - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) cut--;
  return s.substr(0, cut) + "~";
}

std::string rate(double v) {
  char buf[32];
  if (v < 0.005) return "0";
  if (v < 10)
    snprintf(buf, sizeof(buf), "%.2f", v);
  else if (v < 10'000)
    snprintf(buf, sizeof(buf), "%.0f", v);
  else if (v < 1e6)
    snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else
    snprintf(buf, sizeof(buf), "%.1fM", v / 1e6);
  return buf;
}

std::string priority_label(uint32_t p) {
  return p == 0 ? "HP" : p == 1 ? "normal" : p == 2 ? "low" : "lvl " + std::to_string(p);
}

const char* kHelp[] = {
    "fikit-top: the broker's tenants, live",
    "",
    "  s      sort: priority, launch rate, name",
    "  p      pause (the screen stays; samples are skipped)",
    "  h ?    this help (any key returns)",
    "  q      quit",
    "",
    "  L/s G/s   launches and grants per second since the last sample",
    "  HARV      LP: share of wall time its kernels ran in HP gaps (fikit)",
    "  HIT MISS  HP: gaps filled as predicted, and mispredicted, since start",
    "  FMISS     HP: gaps that ended while LP work still ran (fill misses)",
    "  STARVING  LP waiting without a grant for longer than --starve-after",
    "  sparkline GPU launches per second, the last two minutes",
};

}  // namespace

const char* sort_name(SortKey k) {
  switch (k) {
    case SortKey::kPriority:
      return "priority";
    case SortKey::kLaunchRate:
      return "launch rate";
    case SortKey::kName:
      return "name";
  }
  return "?";
}

std::string sparkline(const std::deque<double>& v, size_t width) {
  static const char kLevels[] = " .:-=+*#";
  size_t n = std::min(v.size(), width);
  double top = 0;
  for (size_t i = v.size() - n; i < v.size(); i++) top = std::max(top, v[i]);
  std::string out;
  for (size_t i = v.size() - n; i < v.size(); i++)
    out += top > 0 ? kLevels[std::min<size_t>(7, static_cast<size_t>(v[i] / top * 7.999))] : ' ';
  return out;
}

void View::update(const json& doc, double t) {
  doc_ = doc;
  rows_.clear();
  std::map<uint32_t, Seen> next;
  double total_rate = 0;
  for (const json& j : doc.value("tenants", json::array())) {
    TenantRow r;
    r.id = j.value("id", 0u);
    r.name = j.value("name", std::string());
    r.priority = j.value("priority", 0u);
    r.state = j.value("state", std::string());
    r.waiting = j.value("lp_waiting", 0u);
    Seen s;
    s.t = t;
    s.launches = u64(j, "launches");
    s.granted = u64(j, "granted");
    s.fill_busy_ns = policy_u64(j, "fill_busy_ns");
    uint64_t hits = policy_u64(j, "gap_hits"), misses = policy_u64(j, "gap_misses"),
             fmiss = policy_u64(j, "fill_misses");
    auto it = seen_.find(r.id);
    if (it == seen_.end()) {
      s.first_hits = hits;
      s.first_misses = misses;
      s.first_fill_misses = fmiss;
      s.last_grant_t = t;
    } else {
      const Seen& p = it->second;
      const double dt = t - p.t;
      if (dt > 0) {
        r.launch_rate = static_cast<double>(s.launches - std::min(s.launches, p.launches)) / dt;
        r.grant_rate = static_cast<double>(s.granted - std::min(s.granted, p.granted)) / dt;
        r.harvest_share =
            static_cast<double>(s.fill_busy_ns - std::min(s.fill_busy_ns, p.fill_busy_ns)) * 1e-9 /
            dt;
      }
      s.first_hits = p.first_hits;
      s.first_misses = p.first_misses;
      s.first_fill_misses = p.first_fill_misses;
      s.last_grant_t = s.granted > p.granted || r.waiting == 0 ? t : p.last_grant_t;
    }
    r.gap_hits = hits - std::min(hits, s.first_hits);
    r.gap_misses = misses - std::min(misses, s.first_misses);
    r.fill_misses = fmiss - std::min(fmiss, s.first_fill_misses);
    if (r.priority > 0 && r.waiting > 0) r.starving_s = t - s.last_grant_t;
    total_rate += r.launch_rate;
    next[r.id] = s;
    rows_.push_back(std::move(r));
  }
  if (!seen_.empty()) {
    history_.push_back(total_rate);
    if (history_.size() > kHistory) history_.pop_front();
  }
  seen_ = std::move(next);
}

std::vector<std::string> View::lines(const Settings& st, size_t width, size_t height) const {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (out.size() < height) out.push_back(fit(s, width));
  };
  if (st.help) {
    for (const char* l : kHelp) add(l);
    return out;
  }
  const json& b = doc_.value("broker", json::object());
  char buf[256];
  snprintf(buf, sizeof(buf), "fikit-top  broker pid %d, policy %s, %zu tenant(s)%s",
           b.value("pid", 0), b.value("policy", std::string("?")).c_str(), rows_.size(),
           st.paused ? "  [paused]" : "");
  add(buf);
  std::vector<TenantRow> rows = rows_;
  std::stable_sort(rows.begin(), rows.end(), [&](const TenantRow& a, const TenantRow& c) {
    if (st.sort == SortKey::kLaunchRate) return a.launch_rate > c.launch_rate;
    if (st.sort == SortKey::kName) return a.name < c.name;
    return a.priority != c.priority ? a.priority < c.priority : a.id < c.id;
  });
  const json gpus = doc_.value("gpus", json::array({json::object()}));
  for (const json& g : gpus) {
    std::string uuid = g.value("uuid", std::string());
    std::string model = g.value("model", std::string());
    snprintf(buf, sizeof(buf), "GPU %d %s%s%s", g.value("index", 0),
             model.empty() ? "" : model.c_str(), model.empty() ? "" : " ",
             uuid.empty() ? "" : uuid.c_str());
    add(buf);
    std::string spark = sparkline(history_, width > 22 ? width - 22 : 1);
    snprintf(buf, sizeof(buf), "  launches/s [%s] %s", spark.c_str(),
             rate(history_.empty() ? 0 : history_.back()).c_str());
    add(buf);
    add("");
    snprintf(buf, sizeof(buf), "%4s %-15s %-6s %-6s %6s %6s %5s %5s %5s %5s %s", "ID", "NAME",
             "PRIO", "STATE", "L/s", "G/s", "WAIT", "HARV", "HIT", "MISS", "FMISS");
    add(buf);
    for (const TenantRow& r : rows) {
      const bool lp = r.priority > 0;
      const bool starving = lp && r.starving_s >= st.starve_after_s;
      char harv[16] = "-";
      if (lp) snprintf(harv, sizeof(harv), "%.0f%%", 100 * r.harvest_share);
      snprintf(buf, sizeof(buf), "%4u %-15s %-6s %-6.6s %6s %6s %5u %5s %5s %5s %s", r.id,
               fit(r.name, 15).c_str(), priority_label(r.priority).c_str(), r.state.c_str(),
               rate(r.launch_rate).c_str(), lp ? rate(r.grant_rate).c_str() : "-", r.waiting, harv,
               lp ? "-" : std::to_string(r.gap_hits).c_str(),
               lp ? "-" : std::to_string(r.gap_misses).c_str(),
               lp ? "" : std::to_string(r.fill_misses).c_str());
      add(buf);
      if (starving) {
        snprintf(buf, sizeof(buf), "     STARVING: waiting %.0f s without a grant", r.starving_s);
        add(buf);
      }
    }
  }
  while (out.size() + 1 < height) out.push_back("");
  snprintf(buf, sizeof(buf), "sort: %s   s sort  p pause  h help  q quit", sort_name(st.sort));
  add(buf);
  return out;
}

}  // namespace fikit::top
