// Kernel names of a tenant's keys, for profiles and `profile show`. The client publishes the
// first kKeyNameLen-1 bytes of each kernel's name in its segment (abi.h KeyNameTable); the broker
// copies them out with key_name__read (include/fikit/key_names.h), which yields printable UTF-8
// or nothing, keeps those of keys the tenant's profile holds, and saves them beside the keys.
// Names are untrusted: a name read from a profile file is checked the same way.
#pragma once

#include <fikit/abi.h>

#include <cstddef>
#include <string>

#include "policy/fikit/policy_state.h"

namespace fikit::broker::fikit_policy {

// Copy the names the tenant published for the keys td holds into td.key_names (nullptr: none),
// and forget names of keys td no longer holds.
void collect_key_names(TenantData& td, const KeyNameTable* table);

// "" if `name` may be a saved kernel name (1 to kKeyNameLen-1 bytes of UTF-8 without control
// characters), else why not.
std::string key_name_problem(const std::string& name);

// `name` for people in at most `width` columns: demangled when it is a whole mangled C++ name,
// cut with a trailing '~' when longer than `width` or when it filled the client's table entry
// (the client cuts names there).
std::string key_name_display(const std::string& name, size_t width);

}  // namespace fikit::broker::fikit_policy
