// The broker's GPU-observer options, the "gpu" member of the status document and its table.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/status.h"
#include "gpu/gpu_status.h"
#include "options.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

Result<Options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "fikit-broker");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return parse_options(static_cast<int>(args.size()), argv.data());
}

TEST(GpuOptions, DefaultsLoadTheObserver) {
  Result<Options> o = parse({"start", "-s", "/tmp/x.sock"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->gpu.enabled);
  EXPECT_FALSE(o->gpu.audit_launches);
  EXPECT_FALSE(o->gpu.test_device.has_value());
}

TEST(GpuOptions, Parsed) {
  Result<Options> o = parse({"start", "-s", "/tmp/x.sock", "--audit-launches", "--bpf-btf",
                             "/tmp/btf", "--bpf-test-device", "1:3"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->gpu.audit_launches);
  EXPECT_EQ(o->gpu.btf, "/tmp/btf");
  ASSERT_TRUE(o->gpu.test_device.has_value());
  EXPECT_EQ(o->gpu.test_device->major, 1u);
  EXPECT_EQ(o->gpu.test_device->minor, 3u);
  o = parse({"start", "-s", "/tmp/x.sock", "--bpf-test-device", "/dev/null"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->gpu.test_device->major, 1u);
  EXPECT_EQ(o->gpu.test_device->minor, 3u);
  o = parse({"start", "-s", "/tmp/x.sock", "--no-bpf"});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->gpu.enabled);
  o = parse({"start", "-s", "/tmp/x.sock", "--bpf-test-audit", "/lib/x.so:f1,f2"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->gpu.audit_launches);
  EXPECT_EQ(o->gpu.audit_library, "/lib/x.so");
  EXPECT_EQ(o->gpu.audit_functions, (std::vector<std::string>{"f1", "f2"}));
  o = parse({"start", "-s", "/tmp/x.sock", "--bpf-test-gpu-device", "1:5,/dev/full"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  ASSERT_EQ(o->gpu.test_gpu_devices.size(), 2u);
  EXPECT_EQ(o->gpu.test_gpu_devices[0].minor, 5u);
  EXPECT_EQ(o->gpu.test_gpu_devices[1].minor, 7u);
}

TEST(GpuOptions, UsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"start", "--no-bpf", "--audit-launches"},
                                             {"start", "--bpf-test-device", "1:x"},
                                             {"start", "--bpf-test-device", "/nonexistent/dev"},
                                             {"start", "--bpf-test-device", "/tmp"},
                                             {"start", "--bpf-test-audit", "nofunctions"},
                                             {"start", "--bpf-test-gpu-device", "1:5,1:7,1:3"},
                                             {"start", "--bpf-test-gpu-device", "1:5,"},
                                             {"status", "--no-bpf"},
                                             {"stop", "--audit-launches"}}) {
    Result<Options> o = parse(args);
    EXPECT_FALSE(o.ok()) << args[1];
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(GpuOptions, HelpDocumentsTheObserver) {
  const std::string help = usage_text();
  EXPECT_NE(help.find("--no-bpf"), std::string::npos);
  EXPECT_NE(help.find("--audit-launches"), std::string::npos);
  EXPECT_NE(help.find("1.35 us"), std::string::npos) << "the audit's cost per launch";
  EXPECT_NE(help.find("--bpf-btf"), std::string::npos);
  EXPECT_EQ(help.find("--bpf-test"), std::string::npos) << "test-only options stay hidden";
  size_t start = 0;
  while (start < help.size()) {
    size_t end = help.find('\n', start);
    if (end == std::string::npos) end = help.size();
    EXPECT_LE(end - start, 80u) << help.substr(start, end - start);
    start = end + 1;
  }
}

GpuProcessInfo process(pid_t pid, GpuProcessKind kind, uint64_t device_bytes) {
  GpuProcessInfo p;
  p.pid = pid;
  p.name = "proc" + std::to_string(pid);
  p.kind = kind;
  p.contexts = 4;
  p.channels = 20;
  p.streams = 3;
  p.device_bytes = device_bytes;
  p.peak_device_bytes = device_bytes;
  p.ioctls = 800;
  return p;
}

GpuObserverInfo loaded() {
  GpuObserverInfo info;
  info.state = GpuObserverState::kLoaded;
  info.nvidia_major = 195;
  info.traced_ioctls = 1234;
  return info;
}

TEST(GpuStatus, JsonListsProcessesWithKindMemoryAndExit) {
  GpuProcessInfo tenant = process(10, GpuProcessKind::kTenant, 256 << 20);
  tenant.tenant = 3;
  GpuProcessInfo unmanaged = process(11, GpuProcessKind::kUnmanaged, 6 << 20);
  GpuProcessInfo gone = process(12, GpuProcessKind::kUnmanaged, 0);
  gone.exited = true;
  gone.exit_status = 3 << 8;  // exit(3)
  GpuProcessInfo killed = process(13, GpuProcessKind::kMpsServer, 0);
  killed.exited = true;
  killed.exit_status = SIGKILL;
  json g = gpu_status_json(loaded(), {tenant, unmanaged, gone, killed}, 1'000'000'000, 60000);
  EXPECT_EQ(g["observer"], "loaded");
  EXPECT_EQ(g["unmanaged"], 1) << "exited processes are not counted";
  ASSERT_EQ(g["processes"].size(), 4u);
  EXPECT_EQ(g["processes"][0]["kind"], "tenant");
  EXPECT_EQ(g["processes"][0]["tenant"], 3);
  EXPECT_EQ(g["processes"][0]["device_bytes"], 256 << 20);
  EXPECT_EQ(g["processes"][1]["kind"], "unmanaged");
  EXPECT_EQ(g["processes"][1]["state"], "running");
  EXPECT_TRUE(g["processes"][1]["exit_code"].is_null());
  EXPECT_EQ(g["processes"][2]["state"], "exited");
  EXPECT_EQ(g["processes"][2]["exit_code"], 3);
  EXPECT_TRUE(g["processes"][2]["exit_signal"].is_null());
  EXPECT_EQ(g["processes"][3]["exit_signal"], SIGKILL);
  EXPECT_EQ(g["processes"][3]["kind"], "mps-server");
  EXPECT_TRUE(g["processes"][3]["exit_code"].is_null());
}

TEST(GpuStatus, JsonStaysWithinItsBudget) {
  std::vector<GpuProcessInfo> many;
  for (int i = 0; i < 500; i++) many.push_back(process(1000 + i, GpuProcessKind::kOther, 0));
  json g = gpu_status_json(loaded(), many, 0, 20000);
  EXPECT_LE(g.dump().size(), 20000u);
  EXPECT_GT(g["processes_omitted"].get<size_t>(), 0u);
  EXPECT_EQ(g["processes"].size() + g["processes_omitted"].get<size_t>(), 500u);
}

TEST(GpuStatus, StatusPartsAreMembersOfOneDocument) {
  StatusPart gpu{"gpu", [](uint64_t, size_t) { return json{{"a", 1}}; }};
  StatusPart none{"none", [](uint64_t, size_t) { return json(); }};
  StatusPart big{"big", [](uint64_t, size_t) { return json(std::string(500, 'x')); }};
  json doc = json::parse(status_json(BrokerInfo{}, {}, 0, 400, {gpu, none, big}));
  EXPECT_EQ(doc["gpu"], json::parse(R"({"a":1})"));
  EXPECT_FALSE(doc.contains("none")) << "a null value leaves the member out";
  EXPECT_FALSE(doc.contains("big")) << "a value longer than the room left is left out";
  EXPECT_TRUE(doc["broker"].is_object());
}

// The whole status table, as `fikit-broker status` prints it.
std::string table(const GpuObserverInfo& info, const std::vector<GpuProcessInfo>& procs) {
  BrokerInfo b;
  b.policy = "none";
  StatusPart gpu{"gpu", [&](uint64_t now, size_t max_len) {
                   return gpu_status_json(info, procs, now, max_len);
                 }};
  Result<std::string> text = status_text(status_json(b, {}, 0, 30000, {gpu}));
  EXPECT_TRUE(text.ok()) << text.status().message();
  return text.ok() ? text.value() : "";
}

TEST(GpuStatus, TableShowsUnmanagedProcessesAndMemory) {
  GpuProcessInfo unmanaged = process(4242, GpuProcessKind::kUnmanaged, 1536ull << 20);
  GpuProcessInfo tenant = process(4343, GpuProcessKind::kTenant, 6 << 20);
  tenant.tenant = 7;
  tenant.exited = true;
  tenant.exit_status = 0;
  const std::string t = table(loaded(), {unmanaged, tenant});
  EXPECT_NE(t.find("GPU observer: loaded"), std::string::npos) << t;
  EXPECT_NE(t.find("2 GPU process(es), 1 unmanaged"), std::string::npos) << t;
  EXPECT_NE(t.find("UNMGD"), std::string::npos) << t;
  EXPECT_NE(t.find("1.5G"), std::string::npos) << t;
  EXPECT_NE(t.find("6.0M"), std::string::npos) << t;
  EXPECT_NE(t.find("exit 0"), std::string::npos) << t;
  EXPECT_NE(t.find("cannot schedule"), std::string::npos) << t;
  size_t start = 0;
  while (start < t.size()) {
    size_t end = t.find('\n', start);
    if (end == std::string::npos) end = t.size();
    EXPECT_LE(end - start, 80u) << t.substr(start, end - start);
    start = end + 1;
  }
}

TEST(GpuStatus, PerGpuSharesNamedByTheDriversList) {
  GpuProcessInfo p = process(4444, GpuProcessKind::kUnmanaged, 14 << 20);
  p.gpus = {{0, 1, 2 << 20, -1, ""}, {3, 2, 4 << 20, -1, ""}, {-1, 1, 8 << 20, -1, ""}};
  GpuIdentity a, b;
  a.minor = 0;
  a.uuid = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
  b.minor = 3;  // the driver's second GPU is /dev/nvidia3: index 1
  b.uuid = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
  name_gpus(&p.gpus, {a, b});
  EXPECT_EQ(p.gpus[1].index, 1);
  EXPECT_EQ(p.gpus[1].uuid, b.uuid);
  EXPECT_EQ(p.gpus[2].index, -1) << "unattributed stays so";
  json g = gpu_status_json(loaded(), {p}, 0, 60000);
  const json& gpus = g["processes"][0]["gpus"];
  ASSERT_EQ(gpus.size(), 3u);
  EXPECT_EQ(gpus[0]["minor"], 0);
  EXPECT_EQ(gpus[0]["index"], 0);
  EXPECT_EQ(gpus[0]["uuid"], a.uuid);
  EXPECT_EQ(gpus[0]["device_bytes"], 2 << 20);
  EXPECT_EQ(gpus[1]["minor"], 3);
  EXPECT_EQ(gpus[1]["index"], 1);
  EXPECT_EQ(gpus[1]["contexts"], 2);
  EXPECT_TRUE(gpus[2]["minor"].is_null());
  EXPECT_TRUE(gpus[2]["index"].is_null());
  EXPECT_EQ(gpus[2]["device_bytes"], 8 << 20);
  const std::string t = table(loaded(), {p});
  EXPECT_NE(t.find("pid 4444: GPU 1 " + b.uuid + " 2 ctx 4.0M"), std::string::npos) << t;
  EXPECT_NE(t.find("pid 4444: unattributed 1 ctx 8.0M"), std::string::npos) << t;
  size_t start = 0;
  while (start < t.size()) {
    size_t end = t.find('\n', start);
    if (end == std::string::npos) end = t.size();
    EXPECT_LE(end - start, 80u) << t.substr(start, end - start);
    start = end + 1;
  }
}

TEST(GpuStatus, TableSaysWhyTheObserverIsOff) {
  GpuObserverInfo info;
  info.reason = "--no-bpf";
  EXPECT_NE(table(info, {}).find("GPU observer: disabled (--no-bpf)"), std::string::npos);
  info.state = GpuObserverState::kFailed;
  info.reason = "failed to load: Operation not permitted";
  EXPECT_NE(table(info, {}).find("running without it: failed to load"), std::string::npos);
  Result<std::string> old = status_text(status_json(BrokerInfo{}, {}, 0, 30000));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->find("GPU observer"), std::string::npos) << "a broker without the member";
}

}  // namespace
}  // namespace fikit::broker
