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

// t[obj][key] as a number, or -1 when absent or null (a broker that does not measure it).
double maybe(const json& t, const char* obj, const char* key) {
  auto o = t.find(obj);
  if (o == t.end() || !o->is_object()) return -1;
  auto v = o->find(key);
  return v != o->end() && v->is_number() ? v->get<double>() : -1;
}

std::string us_text(double us) {
  char buf[32];
  if (us < 0) return "-";
  if (us < 10'000)
    snprintf(buf, sizeof(buf), "%.0fus", us);
  else if (us < 10'000'000)
    snprintf(buf, sizeof(buf), "%.1fms", us / 1e3);
  else
    snprintf(buf, sizeof(buf), "%.0fs", us / 1e6);
  return buf;
}

std::string slow_text(double s50, double s99) {
  if (s50 < 0 && s99 < 0) return "-";
  char a[16] = "-", b[16] = "-", buf[40];
  if (s50 >= 0) snprintf(a, sizeof(a), "%.2f", s50);
  if (s99 >= 0) snprintf(b, sizeof(b), "%.2f", s99);
  snprintf(buf, sizeof(buf), "%s/%s", a, b);
  return buf;
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
    "  P50 P99   HP: request latency (first launch after a drain to the drain)",
    "  SLOW      HP: slowdown p50/p99 against its latency alone (- unknown)",
    "  HIT MISS  HP: gaps filled as predicted, and mispredicted, since start",
    "  FMISS     HP: gaps that ended while LP work still ran (fill misses)",
    "  HARV      LP: share of wall time its kernels ran in HP gaps (fikit)",
    "  STARVING  LP waiting without a grant for longer than --starve-after",
    "  busy      GPU time HP tenants had work outstanding, last two minutes",
    "  filled    GPU time LP kernels ran in HP gaps; idle: the rest",
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

std::string sparkline(const std::deque<double>& v, size_t width, double top) {
  static const char kLevels[] = " .:-=+*#";
  size_t n = std::min(v.size(), width);
  if (top <= 0)
    for (size_t i = v.size() - n; i < v.size(); i++) top = std::max(top, v[i]);
  std::string out;
  for (size_t i = v.size() - n; i < v.size(); i++)
    out += top > 0 && v[i] > 0
               ? kLevels[std::min<size_t>(7, static_cast<size_t>(v[i] / top * 7.999))]
               : ' ';
  return out;
}

void View::update(const json& doc, double t) {
  doc_ = doc;
  rows_.clear();
  std::map<uint32_t, Seen> next;
  std::map<uint32_t, GpuShare> share;  // per GPU: busy and filled seconds over dt, summed
  for (const json& j : doc.value("tenants", json::array())) {
    TenantRow r;
    r.id = j.value("id", 0u);
    r.gpu = j.value("gpu", 0u);
    r.p50_us = maybe(j, "request_latency", "p50_us");
    r.p99_us = maybe(j, "request_latency", "p99_us");
    r.slow50 = maybe(j, "slowdown", "p50");
    r.slow99 = maybe(j, "slowdown", "p99");
    r.name = j.value("name", std::string());
    r.priority = j.value("priority", 0u);
    r.state = j.value("state", std::string());
    r.waiting = j.value("lp_waiting", 0u);
    Seen s;
    s.t = t;
    s.launches = u64(j, "launches");
    s.granted = u64(j, "granted");
    s.fill_busy_ns = policy_u64(j, "fill_busy_ns");
    s.busy_s = j.value("busy_s", 0.0);
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
        GpuShare& g = share[r.gpu];
        if (r.priority == 0)
          g.busy += std::max(0.0, s.busy_s - p.busy_s) / dt;
        else
          g.filled += r.harvest_share;
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
    next[r.id] = s;
    rows_.push_back(std::move(r));
  }
  // Shares of the wall time; several HP tenants may be busy at once, so the sum is capped.
  for (auto& [gpu, g] : share) {
    g.busy = std::min(1.0, g.busy);
    g.filled = std::min(1.0 - g.busy, g.filled);
    g.idle = 1.0 - g.busy - g.filled;
    std::deque<GpuShare>& h = history_[gpu];
    h.push_back(g);
    if (h.size() > kHistory) h.pop_front();
  }
  if (!seen_.empty())  // a GPU whose tenants are all new (or none): all idle
    for (const json& g : doc.value("gpus", json::array()))
      if (uint32_t i = g.value("index", 0u); !share.count(i)) {
        std::deque<GpuShare>& h = history_[i];
        h.push_back(GpuShare{0, 0, 1});
        if (h.size() > kHistory) h.pop_front();
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
  // The HP slowdown budget, when the broker has one ("budget": {"p50", "p99"}).
  std::string budget;
  if (auto bu = doc_.find("budget"); bu != doc_.end() && bu->is_object())
    for (const char* q : {"p50", "p99"})
      if (auto v = bu->find(q); v != bu->end() && v->is_number()) {
        char one[32];
        snprintf(one, sizeof(one), "%s %s<=%.2f", budget.empty() ? ", budget" : "", q,
                 v->get<double>());
        budget += one;
      }
  snprintf(buf, sizeof(buf), "fikit-top  broker pid %d, policy %s, %zu tenant(s)%s%s",
           b.value("pid", 0), b.value("policy", std::string("?")).c_str(), rows_.size(),
           budget.c_str(), st.paused ? "  [paused]" : "");
  add(buf);
  std::vector<TenantRow> rows = rows_;
  std::stable_sort(rows.begin(), rows.end(), [&](const TenantRow& a, const TenantRow& c) {
    if (st.sort == SortKey::kLaunchRate) return a.launch_rate > c.launch_rate;
    if (st.sort == SortKey::kName) return a.name < c.name;
    return a.priority != c.priority ? a.priority < c.priority : a.id < c.id;
  });
  const json gpus = doc_.value("gpus", json::array({json::object()}));
  for (const json& g : gpus) {
    const uint32_t index = g.value("index", 0u);
    std::string uuid = g.value("uuid", std::string());
    std::string model = g.value("model", std::string());
    snprintf(buf, sizeof(buf), "GPU %u %s%s%s", index, model.empty() ? "" : model.c_str(),
             model.empty() ? "" : " ", uuid.empty() ? "" : uuid.c_str());
    add(buf);
    // Three sparklines of the GPU's time, each scaled to 100%.
    auto h = history_.find(index);
    const std::deque<GpuShare> none;
    const std::deque<GpuShare>& hist = h == history_.end() ? none : h->second;
    struct Part {
      const char* label;
      double GpuShare::*share;
    };
    for (Part part : {Part{"busy", &GpuShare::busy}, Part{"filled", &GpuShare::filled},
                      Part{"idle", &GpuShare::idle}}) {
      std::deque<double> v;
      for (const GpuShare& x : hist) v.push_back(x.*part.share);
      std::string spark = sparkline(v, width > 20 ? width - 20 : 1, 1.0);
      char pct[16] = "-";
      if (!v.empty()) snprintf(pct, sizeof(pct), "%.0f%%", 100 * v.back());
      snprintf(buf, sizeof(buf), "  %-6s [%s] %s", part.label, spark.c_str(), pct);
      add(buf);
    }
    std::vector<const TenantRow*> hp, lp;
    for (const TenantRow& r : rows)
      if (r.gpu == index) (r.priority == 0 ? hp : lp).push_back(&r);
    if (!hp.empty()) {
      snprintf(buf, sizeof(buf), "%4s %-16s %7s %7s %7s %-11s %6s %5s %5s", "HP", "NAME", "L/s",
               "P50", "P99", "SLOW50/99", "HIT", "MISS", "FMISS");
      add(buf);
    }
    for (const TenantRow* r : hp) {
      snprintf(buf, sizeof(buf), "%4u %-16s %7s %7s %7s %-11s %6s %5s %5s", r->id,
               fit(r->name, 16).c_str(), rate(r->launch_rate).c_str(), us_text(r->p50_us).c_str(),
               us_text(r->p99_us).c_str(), slow_text(r->slow50, r->slow99).c_str(),
               std::to_string(r->gap_hits).c_str(), std::to_string(r->gap_misses).c_str(),
               std::to_string(r->fill_misses).c_str());
      add(buf);
      if (r->state != "active" && !r->state.empty()) add("     " + r->state);
    }
    if (!lp.empty()) {
      snprintf(buf, sizeof(buf), "%4s %-16s %-6s %7s %7s %5s %5s", "LP", "NAME", "PRIO", "L/s",
               "G/s", "WAIT", "HARV");
      add(buf);
    }
    for (const TenantRow* r : lp) {
      const bool starving = r->starving_s >= st.starve_after_s;
      char harv[16];
      snprintf(harv, sizeof(harv), "%.0f%%", 100 * r->harvest_share);
      snprintf(buf, sizeof(buf), "%4u %-16s %-6s %7s %7s %5u %5s", r->id, fit(r->name, 16).c_str(),
               priority_label(r->priority).c_str(), rate(r->launch_rate).c_str(),
               rate(r->grant_rate).c_str(), r->waiting, harv);
      add(buf);
      if (r->state != "active" && !r->state.empty()) add("     " + r->state);
      if (starving) {
        snprintf(buf, sizeof(buf), "     STARVING: waiting %.0f s without a grant", r->starving_s);
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
