// Who may do what with the broker: the highest priority each uid may claim (its ceiling), who is
// an admin (may stop it), and what `status` shows to whom. Set once at start (access_configure),
// before the control thread runs; read-only afterwards. Group membership is the uid's groups in
// the user database (getgrouplist), looked up on each registration.
//
// Ceilings: root may claim any priority; otherwise the first rule that matches the uid (uid:N,
// user:NAME, group:NAME), then members of hp_group (any priority), then default_ceiling (normal).
// A tenant asking more is admitted at its ceiling with a note it prints (or refused, with
// refuse_over_ceiling). Admins: root, the broker's own uid and members of admin_group.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fikit::broker {

struct CeilingRule {
  enum class Kind { kUid, kUser, kGroup } kind = Kind::kUid;
  uid_t uid = 0;
  std::string name;      // user or group
  uint32_t ceiling = 0;  // highest level allowed (0 is the highest)
};

struct AccessConfig {
  std::vector<CeilingRule> rules;
  uint32_t default_ceiling = 1;  // normal
  std::string hp_group = "fikit-hp";
  std::string admin_group = "fikit-admin";
  bool refuse_over_ceiling = false;
};

// Parse one --priority-ceiling "WHO=LEVEL" (WHO: uid:N, user:NAME, group:NAME or '*' for everyone
// else) into `c`.
Status parse_ceiling_rule(const std::string& spec, AccessConfig* c);

void access_configure(const AccessConfig& c);
const AccessConfig& access_config();

// The highest priority `uid` may claim.
uint32_t priority_ceiling(uid_t uid);
// The priority a request for `asked` from `uid` gets: `asked`, or its ceiling with *note saying
// so; a refusal if the configuration refuses requests over the ceiling.
Result<uint32_t> grant_priority(uid_t uid, uint32_t asked, std::string* note);

// Root, the broker's uid or a member of the admin group.
bool is_admin(uid_t uid);
// "uid N is not root, the broker's uid or in group G": why a command was refused.
std::string not_admin_text(uid_t uid);

// The status document `json` as `uid` may see it: all of it for an admin; for anyone else their
// own tenants only (the totals stay).
std::string status_for(const std::string& json, uid_t uid);

}  // namespace fikit::broker
