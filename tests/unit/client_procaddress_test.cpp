// Entry-point selection: which hook cuGetProcAddress hands out for each real variant (legacy,
// per-thread, versioned), the fallback when the driver returns unknown pointers, the hook table's
// consistency, and libfikit.so's exported dlsym (hooked names, RTLD_NEXT as a tail call).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "hook_table.h"
#include "proc_select.h"

namespace fikit::client {
namespace {

int t_row(const char* symbol) {
  int r = find_hook_row(symbol);
  EXPECT_GE(r, 0) << symbol;
  return r;
}

// Fake real pointers: row i's real function is at address 0x1000 * (i + 1).
struct t_Reals {
  void* p[kHookRows];
  t_Reals() {
    for (size_t i = 0; i < kHookRows; i++) p[i] = reinterpret_cast<void*>(0x1000 * (i + 1));
  }
  void* of(const char* symbol) { return p[t_row(symbol)]; }
};

constexpr uint64_t kLegacy = CU_GET_PROC_ADDRESS_LEGACY_STREAM;
constexpr uint64_t kPerThread = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;

TEST(HookTable, RowsAreConsistent) {
  std::set<std::string> symbols;
  for (const HookRow& row : kHookTable) {
    EXPECT_TRUE(symbols.insert(row.symbol).second) << "duplicate " << row.symbol;
    EXPECT_EQ(std::string(row.symbol).rfind(row.proc_name, 0), 0u)
        << row.symbol << " is not a variant of " << row.proc_name;
    EXPECT_GE(row.since, 2000) << row.symbol;
    bool per_thread_name = strstr(row.symbol, "_ptsz") || strstr(row.symbol, "_ptds");
    EXPECT_EQ(per_thread_name, row.variant == Variant::kPerThread) << row.symbol;
  }
  EXPECT_EQ(find_hook_row("cuMemAlloc_v2"), -1);
  EXPECT_EQ(find_hook_row("cuGetExportTable"), -1);
  EXPECT_EQ(find_hook_row("malloc"), -1);
}

TEST(SelectHook, ExactRealPointerPicksItsVariant) {
  t_Reals r;
  EXPECT_EQ(select_hook_row("cuLaunchKernel", r.of("cuLaunchKernel"), 12000, kLegacy, r.p),
            t_row("cuLaunchKernel"));
  EXPECT_EQ(select_hook_row("cuLaunchKernel", r.of("cuLaunchKernel_ptsz"), 12000, kPerThread, r.p),
            t_row("cuLaunchKernel_ptsz"));
  // The driver's answer wins over the flags.
  EXPECT_EQ(select_hook_row("cuLaunchKernel", r.of("cuLaunchKernel_ptsz"), 12000, 0, r.p),
            t_row("cuLaunchKernel_ptsz"));
  EXPECT_EQ(select_hook_row("cuMemcpyDtoH", r.of("cuMemcpyDtoH_v2_ptds"), 12000, kPerThread, r.p),
            t_row("cuMemcpyDtoH_v2_ptds"));
  EXPECT_EQ(select_hook_row("cuCtxSynchronize", r.of("cuCtxSynchronize"), 12000, 0, r.p),
            t_row("cuCtxSynchronize"));
  EXPECT_EQ(select_hook_row("cuCtxSynchronize", r.of("cuCtxSynchronize_v2"), 13000, 0, r.p),
            t_row("cuCtxSynchronize_v2"));
}

TEST(SelectHook, AskingForCuGetProcAddressReturnsTheHook) {
  t_Reals r;
  EXPECT_EQ(select_hook_row("cuGetProcAddress", r.of("cuGetProcAddress_v2"), 12000, 0, r.p),
            t_row("cuGetProcAddress_v2"));
  EXPECT_EQ(select_hook_row("cuGetProcAddress", r.of("cuGetProcAddress"), 11030, 0, r.p),
            t_row("cuGetProcAddress"));
}

TEST(SelectHook, UnhookedSymbolsPassThrough) {
  t_Reals r;
  void* other = reinterpret_cast<void*>(0x999999);
  EXPECT_EQ(select_hook_row("cuMemAlloc", other, 12000, 0, r.p), -1);
  EXPECT_EQ(select_hook_row("cuGetExportTable", other, 12000, 0, r.p), -1);
  EXPECT_EQ(select_hook_row("cuLaunchHostFunc", other, 12000, kPerThread, r.p), -1);
  EXPECT_EQ(select_hook_row(nullptr, other, 12000, 0, r.p), -1);
  EXPECT_EQ(select_hook_row("cuLaunchKernel", nullptr, 12000, 0, r.p), -1);
}

TEST(SelectHook, UnknownPointerFallsBackToFlagsAndVersion) {
  t_Reals r;
  void* alias = reinterpret_cast<void*>(0x777000);  // a driver handing out internal aliases
  EXPECT_EQ(select_hook_row("cuLaunchKernel", alias, 12000, kLegacy, r.p), t_row("cuLaunchKernel"));
  EXPECT_EQ(select_hook_row("cuLaunchKernel", alias, 12000, 0, r.p), t_row("cuLaunchKernel"));
  EXPECT_EQ(select_hook_row("cuLaunchKernel", alias, 12000, kPerThread, r.p),
            t_row("cuLaunchKernel_ptsz"));
  EXPECT_EQ(select_hook_row("cuCtxSynchronize", alias, 12080, 0, r.p), t_row("cuCtxSynchronize"));
  EXPECT_EQ(select_hook_row("cuCtxSynchronize", alias, 13000, 0, r.p),
            t_row("cuCtxSynchronize_v2"));
  EXPECT_EQ(select_hook_row("cuGetProcAddress", alias, 12000, 0, r.p),
            t_row("cuGetProcAddress_v2"));
  // Too old for any hooked variant (cuStreamBeginCapture v1 has another signature).
  EXPECT_EQ(select_hook_row("cuStreamBeginCapture", alias, 10000, 0, r.p), -1);
  // Newer than this build's cuda.h: the driver may mean a variant we have never seen.
  EXPECT_EQ(select_hook_row("cuLaunchKernel", alias, CUDA_VERSION + 10, 0, r.p), -1);
  // A variant libcuda does not export cannot be called through a hook.
  r.p[t_row("cuLaunchKernel_ptsz")] = nullptr;
  EXPECT_EQ(select_hook_row("cuLaunchKernel", alias, 12000, kPerThread, r.p), -1);
}

// libfikit.so itself, loaded into this process (not preloaded).
class LibFikit : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* build = getenv("FIKIT_BUILD_DIR");
    if (!build) GTEST_SKIP() << "FIKIT_BUILD_DIR not set (run through ctest)";
    std::string path = std::string(build) + "/lib/libfikit.so";
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    hook_dlsym_ = reinterpret_cast<DlsymFn>(dlsym(handle_, "dlsym"));
    ASSERT_NE(hook_dlsym_, nullptr);
    ASSERT_NE(reinterpret_cast<void*>(hook_dlsym_), dlsym(RTLD_DEFAULT, "dlsym"));  // libc's
  }
  void* handle_ = nullptr;
  DlsymFn hook_dlsym_ = nullptr;
};

TEST_F(LibFikit, ExportsOnlyHooksAndTheCApi) {
  EXPECT_NE(dlsym(handle_, "cuLaunchKernel_ptsz"), nullptr);
  EXPECT_NE(dlsym(handle_, "cuGetProcAddress_v2"), nullptr);
  EXPECT_NE(dlsym(handle_, "fikit_get_stats"), nullptr);
  EXPECT_EQ(dlsym(handle_, "_ZN5fikit6client10g_countersE"), nullptr);  // internals stay hidden
}

TEST_F(LibFikit, DlsymPassesOtherNamesThrough) {
  EXPECT_EQ(hook_dlsym_(RTLD_DEFAULT, "strlen"), dlsym(RTLD_DEFAULT, "strlen"));
  EXPECT_EQ(hook_dlsym_(RTLD_DEFAULT, "no_such_symbol_anywhere"), nullptr);
  // A hooked name that nothing else defines stays unresolved (no libcuda here).
  void* self = dlopen(nullptr, RTLD_NOW);
  EXPECT_EQ(hook_dlsym_(self, "cuMemAlloc_v2"), dlsym(self, "cuMemAlloc_v2"));
}

TEST_F(LibFikit, DlsymHandsOutHooksForHookedNames) {
  // libfikit defines cuLaunchKernel itself, so real dlsym finds it and the hook is returned.
  EXPECT_EQ(hook_dlsym_(handle_, "cuLaunchKernel"), dlsym(handle_, "cuLaunchKernel"));
  EXPECT_EQ(hook_dlsym_(handle_, "cuGetProcAddress"), dlsym(handle_, "cuGetProcAddress"));
}

TEST_F(LibFikit, DlsymRtldNextSeesTheCallersAddress) {
  // RTLD_NEXT from this executable finds libc's strlen; if the hook called libc's dlsym from its
  // own frame (no tail call), the search would start after libfikit instead.
  for (const char* name : {"strlen", "malloc", "pthread_create", "fikit_connected"})
    EXPECT_EQ(hook_dlsym_(RTLD_NEXT, name), dlsym(RTLD_NEXT, name)) << name;
}

TEST_F(LibFikit, HooksWithoutLibcudaReturnNotFound) {
  if (dlopen("libcuda.so.1", RTLD_LAZY)) GTEST_SKIP() << "a libcuda.so.1 is installed here";
  using SyncFn = CUresult (*)(CUstream);
  auto sync = reinterpret_cast<SyncFn>(dlsym(handle_, "cuStreamSynchronize"));
  ASSERT_NE(sync, nullptr);
  setenv("FIKIT_SOCKET", "/nonexistent/fikit.sock", 1);  // never reach a real broker
  setenv("FIKIT_LOG", "off", 1);
  EXPECT_EQ(sync(nullptr), CUDA_ERROR_NOT_FOUND);
}

}  // namespace
}  // namespace fikit::client
