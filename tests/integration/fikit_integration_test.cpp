// The fikit policy end to end on the simulated driver: a real fikit-broker, an HP and a LP process
// (fikit-run + libfikit.so + fikit-chain). Checked through the simulated GPU's kernel traces, the
// broker's status and the policy statistics it logs when a tenant leaves; never through timings
// (this machine is shared: speed belongs in benchmarks/scenario).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// HP: 60 requests of 5 kernels of 200 us, 300 us host gaps, 2 ms between requests.
const std::vector<std::string> kHp = {"hp",  "--requests",       "60",  "--kernels",
                                      "5",   "--kernel-us",      "200", "--gap-us",
                                      "300", "--request-gap-us", "2000"};
const std::vector<std::string> kOrder = {"order", "--kernels", "3000", "--streams", "4"};
// LP: 1000 kernels of 50 us in batches of 4, tagged 1..1000 on one stream.
const std::vector<std::string> kLp = {"lp", "--kernels", "1000", "--kernel-us", "50"};

class FikitIntegration : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_SimGpu gpu{dir};
  int n = 0;

  t_Proc tenant(const std::string& socket, const std::string& priority, const std::string& name,
                const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        t_bin("fikit-run"),  "--priority", priority, "--name", name, "--socket", socket, "--",
        t_bin("fikit-chain")};
    argv.insert(argv.end(), args.begin(), args.end());
    return t_spawn(argv, gpu.env(), dir.file(name + std::to_string(n++)));
  }

  std::map<std::string, std::string> finish(t_Proc& p) {
    EXPECT_TRUE(t_wait(p, 120s)) << "workload did not finish: " << t_read_file(p.err_path);
    EXPECT_EQ(t_exit_code(p), 0) << t_read_file(p.err_path);
    return t_kv(t_read_file(p.out_path));
  }

  // Kernels of process `pid` per stream, checked to be tagged 1..n in order; return the total.
  size_t exactly_once_in_order(pid_t pid) {
    size_t total = 0;
    for (auto& [stream, seq] : t_trace_tags(gpu.trace_prefix + "." + std::to_string(pid), "spin")) {
      for (size_t i = 0; i < seq.size(); i++)
        if (seq[i] != i + 1) {
          ADD_FAILURE() << "stream " << stream << ": kernel " << i << " has tag " << seq[i];
          break;
        }
      total += seq.size();
    }
    return total;
  }

  // The policy statistics the broker logged when tenant `name` left (null if none yet).
  static json logged_stats(t_Broker& b, const std::string& name) {
    std::string log = t_read_file(b.proc().err_path);
    const std::string marker = "\"" + name + "\") policy stats: ";
    json found;
    for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
      size_t start = at + marker.size();
      size_t end = log.find('\n', start);
      found = json::parse(log.substr(start, end == std::string::npos ? end : end - start), nullptr,
                          false);
    }
    return found.is_discarded() ? json() : found;
  }

  static json tenant_status(const t_Broker& b, const std::string& name) {
    json doc = json::parse(b.status_json(), nullptr, false);
    if (doc.is_discarded() || !doc.contains("tenants")) return nullptr;
    for (auto& t : doc["tenants"])
      if (t.value("name", "") == name) return t;
    return nullptr;
  }
};

// HP and LP under fikit: every launch runs exactly once and in order, LP finishes its work, and
// LP work goes into HP's gaps with few of them missed.
TEST_F(FikitIntegration, HpProtectedWhileLpFillsItsGaps) {
  t_Broker broker(dir, "fikit", {"--switch-cost-us", "0"});
  std::vector<std::string> hp_args = kHp;
  hp_args[2] = "100";
  t_Proc hp = tenant(broker.socket(), "high", "serve", hp_args);
  // LP arrives once HP runs, so that its work has HP's gaps to go into.
  ASSERT_TRUE(t_eventually(
      [&] {
        json t = tenant_status(broker, "serve");
        return !t.is_null() && t.value("launches", 0) > 0;
      },
      30s))
      << t_read_file(broker.proc().err_path);
  t_Proc lp = tenant(broker.socket(), "low", "train", kLp);
  pid_t hp_pid = hp.pid, lp_pid = lp.pid;
  finish(hp);
  auto lp_out = finish(lp);
  EXPECT_EQ(lp_out["kernels"], "1000") << "LP completes its work";
  EXPECT_EQ(exactly_once_in_order(lp_pid), 1000u);
  EXPECT_EQ(exactly_once_in_order(hp_pid), 100u * 5u);
  json hs;
  ASSERT_TRUE(t_eventually([&] { return !(hs = logged_stats(broker, "serve")).is_null(); }, 20s))
      << t_read_file(broker.proc().err_path);
  // Every kernel that ran, including those still in its ring when it exited (drained at removal).
  EXPECT_EQ(hs.value("kernels", 0), 500) << hs.dump();
  EXPECT_EQ(hs.value("keys", 0), 1);
  EXPECT_GT(hs.value("gaps", 0), 100) << hs.dump();
  EXPECT_GT(hs.value("gap_hits", 0), hs.value("gap_misses", 0)) << hs.dump();
  EXPECT_GT(hs.value("gaps_filled", 0), 0) << "no LP work went into HP's gaps: " << hs.dump();
  EXPECT_GT(hs.value("lp_into_gaps", 0), 0) << hs.dump();
  // A fill miss: HP came back while LP work granted into its gap still ran.
  EXPECT_LE(hs.value("fill_misses", 0) * 4, hs.value("gaps_filled", 0) + 4) << hs.dump();
  json ls;
  ASSERT_TRUE(t_eventually([&] { return !(ls = logged_stats(broker, "train")).is_null(); }, 20s));
  EXPECT_EQ(ls.value("kernels", 0), 1000);
  EXPECT_GT(ls.value("grants_fill", 0), 0) << ls.dump();
}

// What a tenant taught the policy is saved when it leaves and loaded when a tenant of that name
// comes back to a later broker: status shows its keys known from the start.
TEST_F(FikitIntegration, ProfileSavedOnStopAndLoadedByTheNextBroker) {
  std::string profiles = dir.file("kept-profiles");
  {
    t_Broker broker(dir, "fikit", {"--profile-dir", profiles});
    t_Proc hp = tenant(broker.socket(), "high", "serve", kHp);
    finish(hp);
  }
  ASSERT_TRUE(std::filesystem::exists(profiles + "/serve.json"));
  json saved = json::parse(t_read_file(profiles + "/serve.json"), nullptr, false);
  ASSERT_FALSE(saved.is_discarded());
  EXPECT_EQ(saved.value("tenant", ""), "serve");
  EXPECT_EQ(saved["keys"].size(), 1u);
  ASSERT_FALSE(saved["keys"].empty());
  EXPECT_EQ(saved["keys"][0].value("name", ""), "spin") << "the kernel name the tenant published";
  t_Proc show =
      t_spawn({t_bin("fikit-broker"), "profile", "show", "serve", "--profile-dir", profiles}, {},
              dir.file("show"));
  ASSERT_TRUE(t_wait(show, 10s));
  EXPECT_NE(t_read_file(show.out_path).find(" spin\n"), std::string::npos)
      << t_read_file(show.out_path) << t_read_file(show.err_path);

  t_Broker broker(dir, "fikit", {"--profile-dir", profiles});
  std::vector<std::string> longer = kHp;
  longer[2] = "400";  // long enough to be seen in status
  t_Proc hp = tenant(broker.socket(), "high", "serve", longer);
  json t;
  ASSERT_TRUE(t_eventually([&] { return !(t = tenant_status(broker, "serve")).is_null(); }, 30s))
      << t_read_file(broker.proc().err_path);
  EXPECT_EQ(t["policy"].value("profile", ""), "loaded 1 keys") << t.dump();
  EXPECT_EQ(t["policy"].value("keys", 0), 1) << t.dump();
  EXPECT_NE(t.value("policy_text", "").find("profile: loaded"), std::string::npos);
  finish(hp);
  EXPECT_NE(t_read_file(broker.proc().err_path).find("tenant 'serve': profile loaded (1 kernel"),
            std::string::npos);
}

// A corrupt profile and one of another version: a clear error in the log, the tenants run
// without them, and the files are left for the operator.
TEST_F(FikitIntegration, CorruptOrForeignProfileIsRejectedAndLeftAlone) {
  std::string profiles = dir.file("bad-profiles");
  std::filesystem::create_directories(profiles);
  const std::string corrupt = "{\"format\": \"fikit-profile\", \"version\": 1, \"keys\": [";
  const std::string foreign = R"({"format": "fikit-profile", "version": 99, "tenant": "old"})";
  std::ofstream(profiles + "/serve.json") << corrupt;
  std::ofstream(profiles + "/old.json") << foreign;
  t_Broker broker(dir, "fikit", {"--profile-dir", profiles});
  t_Proc a = tenant(broker.socket(), "high", "serve", kHp);
  t_Proc b = tenant(broker.socket(), "low", "old", kOrder);
  finish(a);
  finish(b);
  std::string log;
  ASSERT_TRUE(t_eventually(
      [&] {
        log = t_read_file(broker.proc().err_path);
        return log.find("\"old\") policy stats") != std::string::npos;
      },
      20s))
      << log;
  EXPECT_NE(log.find("failed to load profile " + profiles + "/serve.json"), std::string::npos)
      << log;
  EXPECT_NE(log.find("tenant 'serve' starts without it"), std::string::npos) << log;
  EXPECT_NE(log.find("profile version 99, this broker reads version 1"), std::string::npos) << log;
  EXPECT_EQ(t_read_file(profiles + "/serve.json"), corrupt) << "overwritten";
  EXPECT_EQ(t_read_file(profiles + "/old.json"), foreign) << "overwritten";
  EXPECT_FALSE(broker.status_json().empty()) << "the broker carries on";
}

}  // namespace
}  // namespace fikit::test
