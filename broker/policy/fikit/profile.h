// Profiles: what the policy learned about a tenant (per kernel key: durations, gaps, prediction
// quality; the tenant's gaps and grant delays), saved as versioned JSON per tenant name so that a
// known task is scheduled well from its first request. A corrupt, foreign-version or
// other-tenant file is rejected with a message saying what is wrong; the tenant then starts
// without it.
#pragma once

#include <string>
#include <vector>

#include "policy/fikit/policy_state.h"

namespace fikit::broker::fikit_policy {

inline constexpr const char* kProfileFormat = "fikit-profile";
inline constexpr int kProfileVersion = 1;

// Profiles are keyed by (uid, tenant name): one user cannot read, overwrite or poison another's.
// Root's are <dir>/<name>.json (where profiles were before they were keyed by uid), another uid's
// <dir>/u<uid>/<name>.json (directories 0700). In the file name every byte outside
// [A-Za-z0-9_-], and a leading '.', is %XX, so distinct names never share a file.
std::string profile_path(const std::string& dir, const std::string& name, uint32_t uid = 0);
// "" if `name` may name a profile, else why not: 1 to 31 bytes of valid UTF-8, no '/', no
// control characters, not "." or "..".
std::string profile_name_problem(const std::string& name);

// The JSON text of td's profile.
std::string profile_to_json(const TenantData& td);
// Replace td's learned state with the profile `text`. Return false with *err saying what is
// wrong (td unchanged). A profile of another tenant name is rejected unless `any_name`.
bool profile_from_json(const std::string& text, bool any_name, TenantData* td, std::string* err);

// Write td's profile into dir (created 0700 if missing; refused if another user owns it or may
// write it: base/safe_fs.h), atomically (temporary file, then rename), mode 0600, never through a
// symlink.
bool profile_save(const TenantData& td, const std::string& dir, std::string* err);
// Load td's profile from dir. Return true if loaded; false with *err empty if there is none,
// or with *err = "failed to load profile <path>: <why>".
bool profile_load(TenantData* td, const std::string& dir, std::string* err);

// Read a whole file into *out. Return false with *err = "failed to read <path>: <strerror>".
bool read_text_file(const std::string& path, std::string* out, std::string* err);
// Write `text` to path atomically, as profile_save does. Return false with
// *err = "failed to write <path>: ...".
bool write_text_file_atomic(const std::string& path, const std::string& text, std::string* err);

}  // namespace fikit::broker::fikit_policy
