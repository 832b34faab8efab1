// The broker's GPU table, the registration's GPU, the per-GPU lock and the simulated node's
// CUDA_VISIBLE_DEVICES.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "control/admission.h"
#include "gpu/gpu_domains.h"
#include "gpu/gpu_lock.h"
#include "sim/sim_devices.h"

namespace fikit::broker {
namespace {

GpuIdentity gpu(uint32_t minor, const std::string& uuid) {
  GpuIdentity g;
  g.minor = minor;
  g.uuid = uuid;
  return g;
}

std::array<uint8_t, kGpuUuidLen> uuid_bytes(uint8_t seed) {
  std::array<uint8_t, kGpuUuidLen> b{};
  for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<uint8_t>(seed + i);
  return b;
}

TEST(GpuDomains, TheDriversGpusByUuidAndARefusalForAnyOther) {
  auto a = uuid_bytes(1), b = uuid_bytes(2), mig = uuid_bytes(9);
  GpuDomains d({gpu(0, gpu_uuid_text(a.data())), gpu(1, gpu_uuid_text(b.data()))});
  EXPECT_EQ(*d.index_of(a.data()), 0u);
  EXPECT_EQ(*d.index_of(b.data()), 1u);
  EXPECT_EQ(*d.index_of(nullptr), 0u);  // an ABI 2.0 client: GPU 0
  Result<uint32_t> r = d.index_of(mig.data());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MIG"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("unmanaged"), std::string::npos);
  EXPECT_EQ(d.list().size(), 2u);
}

TEST(GpuDomains, LearnsGpusInTheOrderTenantsNameThemUpToACap) {
  GpuDomains d({});
  EXPECT_TRUE(d.learning());
  EXPECT_EQ(d.list().size(), 1u);  // GPU 0, not named yet
  EXPECT_EQ(*d.index_of(nullptr), 0u);
  auto a = uuid_bytes(1), b = uuid_bytes(2);
  EXPECT_EQ(*d.index_of(b.data()), 0u);
  EXPECT_EQ(*d.index_of(a.data()), 1u);
  EXPECT_EQ(*d.index_of(b.data()), 0u);
  for (uint8_t i = 3; d.list().size() < kMaxGpuDomains; i++)
    ASSERT_TRUE(d.index_of(uuid_bytes(i).data()).ok());
  EXPECT_FALSE(d.index_of(uuid_bytes(200).data()).ok());
}

TEST(Admission, TheGpuOfARegistrationAndOldRequests) {
  auto a = uuid_bytes(1), b = uuid_bytes(2);
  GpuDomains d({gpu(0, gpu_uuid_text(a.data())), gpu(1, gpu_uuid_text(b.data()))});
  RegisterRequest req{};
  req.hdr = msg_header(MsgType::kRegister, sizeof(req));
  req.priority = kPriorityLow;
  req.flags = kRegisterGpuUuid;
  memcpy(req.gpu_uuid, b.data(), kGpuUuidLen);
  strcpy(req.name, "t");
  Peer peer{getpid(), geteuid()};
  const char* msg = reinterpret_cast<const char*>(&req);
  Result<Admitted> r = admit(msg, sizeof(req), peer, 7, d);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->desc->gpu, 1u);
  EXPECT_EQ(r->desc->seg->hdr.gpu, 1u);
  close(r->segment_fd);
  // An ABI 2.0 request (no UUID, 56 bytes): GPU 0.
  req.flags = 0;
  req.hdr.size = kRegisterRequestV0Size;
  r = admit(msg, kRegisterRequestV0Size, peer, 8, d);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->desc->gpu, 0u);
  close(r->segment_fd);
  // The UUID flag on a request too short to carry one, and unknown flags: refused.
  req.flags = kRegisterGpuUuid;
  EXPECT_FALSE(decode_register(msg, kRegisterRequestV0Size, peer).ok());
  req.flags = 1u << 5;
  req.hdr.size = sizeof(req);
  EXPECT_FALSE(decode_register(msg, sizeof(req), peer).ok());
  // A GPU the driver does not list: refused with a text, nothing created.
  auto other = uuid_bytes(50);
  req.flags = kRegisterGpuUuid;
  memcpy(req.gpu_uuid, other.data(), kGpuUuidLen);
  r = admit(msg, sizeof(req), peer, 9, d);
  EXPECT_FALSE(r.ok());
}

TEST(GpuLocks, ASecondHolderIsRefusedWithTheFirstsPidAndSocket) {
  char tmpl[] = "/tmp/fikit-gpulock-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::vector<GpuIdentity> gpus = {gpu(0, "GPU-aaaa"), gpu(1, "GPU-bbbb")};
  GpuLocks first;
  ASSERT_TRUE(first.lock(dir, gpus, "/run/x.sock").ok());
  // flock is per open file: another GpuLocks in this process conflicts as another broker would.
  GpuLocks second;
  Status s = second.lock(dir, {gpus[1]}, "/run/y.sock");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("pid " + std::to_string(getpid()) + " on socket /run/x.sock"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("GPU-bbbb"), std::string::npos);
  GpuLocks other_gpu;
  EXPECT_TRUE(other_gpu.lock(dir, {gpu(2, "GPU-cccc")}, "/run/y.sock").ok());
  std::filesystem::remove_all(dir);
}

TEST(SimNode, CudaVisibleDevicesAsTheRealDriverReadsIt) {
  sim::Config cfg;
  cfg.shm_name = "/fikit-unit-node";
  cfg.devices = 4;
  std::vector<sim::DeviceIdentity> node = sim::node_devices(cfg);
  ASSERT_EQ(node.size(), 4u);
  EXPECT_EQ(node[2].cfg.shm_name, "/fikit-unit-node-2");
  EXPECT_NE(node[0].uuid_text, node[1].uuid_text);
  EXPECT_EQ(sim::node_devices(cfg)[3].uuid_text, node[3].uuid_text);  // stable
  using V = std::vector<uint32_t>;
  EXPECT_EQ(sim::visible_devices(node, nullptr), (V{0, 1, 2, 3}));
  EXPECT_EQ(sim::visible_devices(node, ""), V{});
  EXPECT_EQ(sim::visible_devices(node, "2,0"), (V{2, 0}));
  EXPECT_EQ(sim::visible_devices(node, " 1 , 3"), (V{1, 3}));
  EXPECT_EQ(sim::visible_devices(node, "1,7,2"), V{1});  // ends at a GPU that does not exist
  EXPECT_EQ(sim::visible_devices(node, "3,3"), V{3});    // or one already listed
  EXPECT_EQ(sim::visible_devices(node, "-1,0"), V{});
  EXPECT_EQ(sim::visible_devices(node, (node[2].uuid_text + ",0").c_str()), (V{2, 0}));
  EXPECT_EQ(sim::visible_devices(node, node[1].uuid_text.substr(0, 12).c_str()),
            V{1});                                     // a unique prefix
  EXPECT_EQ(sim::visible_devices(node, "GPU-"), V{});  // ambiguous
}

}  // namespace
}  // namespace fikit::broker
