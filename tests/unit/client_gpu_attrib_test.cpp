// The client's attribution of launches to GPUs (libclient/gpu_attrib.h) on a fake driver: the
// current context's device by UUID, one slot per GPU whatever the context, cached per context.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "gpu_attrib.h"
#include "hook_table.h"

namespace fikit::client {
namespace {

// Contexts 0x10+k are on device k; device k's UUID is k+1 repeated; device 9 has no UUID.
thread_local CUcontext t_current = nullptr;
std::atomic<int> t_device_asks{0};
CUresult fake_get_current(CUcontext* c) {
  *c = t_current;
  return CUDA_SUCCESS;
}
CUresult fake_get_uuid(CUuuid* u, CUdevice d) {
  if (d == 9) return CUDA_ERROR_INVALID_DEVICE;
  memset(u->bytes, d + 1, sizeof(u->bytes));
  return CUDA_SUCCESS;
}
CUcontext ctx_on(int device, int nth = 0) {
  return reinterpret_cast<CUcontext>(static_cast<uintptr_t>(0x10 + device + 0x1000 * nth));
}

class GpuAttrib : public ::testing::Test {
 protected:
  void SetUp() override {
    ops_.ctx_get_current = fake_get_current;
    ops_.ctx_get_device = [](CUdevice* d) {
      t_device_asks++;
      *d = static_cast<CUdevice>((reinterpret_cast<uintptr_t>(t_current) - 0x10) % 0x1000);
      return CUDA_SUCCESS;
    };
    ops_.device_get_uuid = fake_get_uuid;
    driver_override_for_test(&ops_);
    gpu_attrib_reset_for_test();
    t_device_asks = 0;
  }
  void TearDown() override {
    driver_override_for_test(nullptr);
    gpu_attrib_reset_for_test();
  }
  DriverOps ops_{};
};

TEST_F(GpuAttrib, OneSlotPerGpuInOrderOfFirstLaunchWhateverTheContext) {
  t_current = ctx_on(3);
  EXPECT_EQ(current_gpu_slot(), 0);
  t_current = ctx_on(1);
  EXPECT_EQ(current_gpu_slot(), 1);
  t_current = ctx_on(3, 1);  // another context on device 3 (cuCtxCreate beside the primary)
  EXPECT_EQ(current_gpu_slot(), 0);
  ASSERT_NE(gpu_slot_uuid(0), nullptr);
  EXPECT_EQ(gpu_slot_uuid(0)->bytes[0], 4);
  EXPECT_EQ(gpu_slot_uuid(1)->bytes[5], 2);
  EXPECT_EQ(gpu_slot_uuid(2), nullptr);
  EXPECT_EQ(gpu_slot_uuid(kUnknownGpu), nullptr);
}

TEST_F(GpuAttrib, TheDriverIsAskedOncePerContextAndThreadsSwitchFreely) {
  t_current = ctx_on(0);
  current_gpu_slot();
  t_current = ctx_on(1);
  current_gpu_slot();
  int asked = t_device_asks.load();
  for (int i = 0; i < 100; i++) {  // a thread switching device between launches
    t_current = ctx_on(i % 2);
    EXPECT_EQ(current_gpu_slot(), i % 2);
  }
  std::thread other([] {
    t_current = ctx_on(1);
    EXPECT_EQ(current_gpu_slot(), 1);
  });
  other.join();
  EXPECT_EQ(t_device_asks.load(), asked) << "known contexts were asked of the driver again";
}

TEST_F(GpuAttrib, AGpuTheDriverCannotNameAndNoContext) {
  t_current = ctx_on(9);
  EXPECT_EQ(current_gpu_slot(), kUnknownGpu);
  t_current = nullptr;
  EXPECT_EQ(current_gpu_slot(), kUnknownGpu);
  ops_.ctx_get_device = nullptr;  // an old driver
  t_current = ctx_on(2);
  EXPECT_EQ(current_gpu_slot(), kUnknownGpu);
}

TEST_F(GpuAttrib, MoreGpusThanSlotsFailOpen) {
  for (int d = 0; d < kMaxClientGpus; d++) {
    t_current = ctx_on(d == 9 ? 100 : d);  // device 9 has no UUID: use another
    ASSERT_GE(current_gpu_slot(), 0);
  }
  t_current = ctx_on(200);
  EXPECT_EQ(current_gpu_slot(), -1);
}

}  // namespace
}  // namespace fikit::client
