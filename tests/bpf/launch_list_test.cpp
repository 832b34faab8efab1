// The launch audit's default entry points (broker/bpf/launch_auditor.cpp) are the launch hooks of
// libfikit (libclient/hook_list.def): a launch entry point added to one list and not the other
// would be counted for tenants but not for unmanaged processes, or the reverse.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

#include "launch_auditor.h"

namespace fikit::bpf {
namespace {

// The hooks whose entry point launches work on the GPU (cuLaunch*, cuGraphLaunch).
std::set<std::string> hooked_launches() {
  std::set<std::string> out;
  auto is_launch = [](std::string_view base) {
    return base.starts_with("cuLaunch") || base == "cuGraphLaunch";
  };
#define FIKIT_HOOK(symbol, proc_name, since, variant) \
  if (is_launch(#proc_name)) out.insert(#symbol);
#include "hook_list.def"
#undef FIKIT_HOOK
  return out;
}

TEST(LaunchList, AuditedEntryPointsAreTheHookedLaunches) {
  std::set<std::string> audited(kDefaultLaunchFunctions.begin(), kDefaultLaunchFunctions.end());
  EXPECT_EQ(audited.size(), kDefaultLaunchFunctions.size()) << "no entry point twice";
  EXPECT_EQ(audited, hooked_launches());
  EXPECT_GE(audited.size(), 8u);
}

}  // namespace
}  // namespace fikit::bpf
