// The fikit policy (FIKIT: filling inter-kernel idle time) and what the broker and its CLI call
// besides the ops table. docs/POLICY.md describes the design, parameters and limits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace fikit::broker {

extern const PolicyOps kFikitPolicy;
// fikit given the true gaps through idle hints (oracle.cpp), for benchmarks. Both tables are
// defined in ops.cpp.
extern const PolicyOps kOraclePolicy;

// Feed the oracle a kHintIdle entry of tenant t (idle for idle_ns from t_ns). For the oracle's
// state only (what kOraclePolicy.init returned): kOraclePolicy.on_hint_idle.
void fikit_oracle_hint_idle(void* state, TenantInfo& t, uint64_t idle_ns, uint64_t t_ns);

// Statistics of tenant `tenant_id` held by a fikit policy state (what kFikitPolicy.init
// returned): kernels seen, keys known, predicted vs actual gaps, LP work granted into gaps. Text:
// indented lines for `fikit-broker status` ("" if unknown); JSON: one object ("{}" if unknown).
// Call on the scheduler thread (the policy state has no locks).
std::string fikit_tenant_stats_text(const void* state, uint32_t tenant_id);
std::string fikit_tenant_stats_json(const void* state, uint32_t tenant_id);

// Check a --policy-opts spec ("name=value,...", docs/POLICY.md) for the fikit and oracle
// policies. Return false with *err naming the bad pair.
bool fikit_policy_opts_check(const std::string& spec, std::string* err);

// `fikit-broker profile ...`: each returns false with *err saying what failed. Profiles are keyed
// by (uid, tenant name) (profile.h); `uid` picks whose.
// show NAME: a human-readable summary of the saved profile of tenant NAME.
bool fikit_profile_show(const std::string& dir, const std::string& name, std::string* out,
                        std::string* err, uint32_t uid = 0);
// export NAME: the profile's JSON text, validated (the CLI writes it to a file or stdout).
bool fikit_profile_export(const std::string& dir, const std::string& name, std::string* json,
                          std::string* err, uint32_t uid = 0);
// import NAME: validate `json` (a profile of any tenant name) and install it as NAME's profile.
bool fikit_profile_import(const std::string& dir, const std::string& name, const std::string& json,
                          std::string* err, uint32_t uid = 0);
// rm NAME: remove the profile (never following a symlink).
bool fikit_profile_remove(const std::string& dir, const std::string& name, std::string* err,
                          uint32_t uid = 0);
// Tenant names with a profile in dir (from the files' contents), sorted: root's as "NAME", other
// uids' as "NAME (uid N)".
std::vector<std::string> fikit_profile_list(const std::string& dir);

}  // namespace fikit::broker
