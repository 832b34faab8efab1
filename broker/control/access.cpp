#include "control/access.h"

#include <fikit/abi.h>
#include <fikit/util.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

namespace fikit::broker {
namespace {

AccessConfig g_config;

// The groups of `uid` in the user database (its primary group first); empty if unknown.
std::vector<std::string> groups_of(uid_t uid) {
  std::vector<std::string> out;
  char buf[16384];
  passwd pw, *found = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found) return out;
  int n = 64;
  std::vector<gid_t> gids(static_cast<size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, gids.data(), &n) < 0) {
    gids.resize(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, pw.pw_gid, gids.data(), &n) < 0) return out;
  }
  for (int i = 0; i < n; i++) {
    char gbuf[16384];
    group g, *gf = nullptr;
    if (getgrgid_r(gids[static_cast<size_t>(i)], &g, gbuf, sizeof(gbuf), &gf) == 0 && gf)
      out.push_back(g.gr_name);
  }
  return out;
}

bool in_group(uid_t uid, const std::string& group) {
  if (group.empty()) return false;
  for (const std::string& g : groups_of(uid))
    if (g == group) return true;
  return false;
}

std::string user_name(uid_t uid) {
  char buf[16384];
  passwd pw, *found = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found) return "";
  return pw.pw_name;
}

bool rule_matches(const CeilingRule& r, uid_t uid) {
  switch (r.kind) {
    case CeilingRule::Kind::kUid:
      return r.uid == uid;
    case CeilingRule::Kind::kUser:
      return r.name == user_name(uid);
    case CeilingRule::Kind::kGroup:
      return in_group(uid, r.name);
  }
  return false;
}

}  // namespace

Status parse_ceiling_rule(const std::string& spec, AccessConfig* c) {
  size_t eq = spec.rfind('=');
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::kInvalidArgument,
                  "--priority-ceiling '" + spec + "': " + why +
                      " (use WHO=LEVEL, WHO uid:N, user:NAME, group:NAME or '*')");
  };
  if (eq == std::string::npos || eq == 0) return bad("no '='");
  int level = priority_parse(spec.substr(eq + 1).c_str());
  if (level < 0) return bad("unknown priority '" + spec.substr(eq + 1) + "'");
  std::string who = spec.substr(0, eq);
  if (who == "*") {
    c->default_ceiling = static_cast<uint32_t>(level);
    return Status();
  }
  CeilingRule r;
  r.ceiling = static_cast<uint32_t>(level);
  if (who.rfind("uid:", 0) == 0) {
    char* end = nullptr;
    unsigned long v = strtoul(who.c_str() + 4, &end, 10);
    if (who.size() == 4 || *end != '\0') return bad("bad uid");
    r.kind = CeilingRule::Kind::kUid;
    r.uid = static_cast<uid_t>(v);
  } else if (who.rfind("user:", 0) == 0 && who.size() > 5) {
    r.kind = CeilingRule::Kind::kUser;
    r.name = who.substr(5);
  } else if (who.rfind("group:", 0) == 0 && who.size() > 6) {
    r.kind = CeilingRule::Kind::kGroup;
    r.name = who.substr(6);
  } else {
    return bad("unknown WHO '" + who + "'");
  }
  c->rules.push_back(r);
  return Status();
}

void access_configure(const AccessConfig& c) { g_config = c; }
const AccessConfig& access_config() { return g_config; }

uint32_t priority_ceiling(uid_t uid) {
  if (uid == 0) return 0;
  for (const CeilingRule& r : g_config.rules)
    if (rule_matches(r, uid)) return r.ceiling;
  if (in_group(uid, g_config.hp_group)) return 0;
  return g_config.default_ceiling;
}

Result<uint32_t> grant_priority(uid_t uid, uint32_t asked, std::string* note) {
  note->clear();
  uint32_t ceiling = priority_ceiling(uid);
  if (asked >= ceiling) return asked;
  std::string why = "uid " + std::to_string(uid) + " may claim priority " + priority_name(ceiling) +
                    " at most, not " + priority_name(asked) + " (root and group " +
                    g_config.hp_group + " may claim high; see --priority-ceiling)";
  if (g_config.refuse_over_ceiling) return Status(StatusCode::kPermissionDenied, "refused: " + why);
  *note = "admitted at priority " + std::string(priority_name(ceiling)) + ": " + why;
  return ceiling;
}

bool is_admin(uid_t uid) {
  return uid == 0 || uid == geteuid() || in_group(uid, g_config.admin_group);
}

std::string not_admin_text(uid_t uid) {
  return "uid " + std::to_string(uid) + " is not root, the broker's uid " +
         std::to_string(geteuid()) + " or in group " + g_config.admin_group;
}

std::string status_for(const std::string& json, uid_t uid) {
  if (is_admin(uid)) return json;
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object() || !doc.contains("tenants") || !doc["tenants"].is_array()) return json;
  nlohmann::json mine = nlohmann::json::array();
  std::set<uint32_t> mine_ids;
  size_t hidden = 0;
  for (const nlohmann::json& t : doc["tenants"]) {
    if (t.value("uid", static_cast<uid_t>(-1)) == uid) {
      mine.push_back(t);
      mine_ids.insert(t.value("id", 0u));
    } else {
      hidden++;
    }
  }
  doc["tenants"] = mine;
  doc["tenants_of_others"] = hidden;  // the totals stay in "broker"
  if (doc.contains("gpus") && doc["gpus"].is_array())
    for (nlohmann::json& g : doc["gpus"])
      if (g.is_object() && g.contains("tenants") && g["tenants"].is_array()) {
        nlohmann::json ids = nlohmann::json::array();
        for (const nlohmann::json& id : g["tenants"])
          if (id.is_number_unsigned() && mine_ids.count(id.get<uint32_t>())) ids.push_back(id);
        g["tenants"] = ids;
      }
  // The GPU observer's processes: the user's own (by their /proc owner, or as its tenants); the
  // others are counted, as tenants are.
  if (doc.contains("gpu") && doc["gpu"].is_object() && doc["gpu"].contains("processes") &&
      doc["gpu"]["processes"].is_array()) {
    nlohmann::json& g = doc["gpu"];
    nlohmann::json procs = nlohmann::json::array();
    size_t others = 0;
    for (const nlohmann::json& p : g["processes"]) {
      const nlohmann::json owner = p.value("uid", nlohmann::json());
      const bool own = (owner.is_number_unsigned() && owner.get<uint64_t>() == uid) ||
                       (p.value("tenant", 0u) != 0 && mine_ids.count(p.value("tenant", 0u)));
      if (own)
        procs.push_back(p);
      else
        others++;
    }
    g["processes"] = procs;
    g["processes_of_others"] = others;
  }
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fikit::broker
