// Profiles: save and load, corrupt / foreign-version / other-tenant files, the CLI functions,
// and a known task scheduled well from its first request.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fikit_fake_sched.h"
#include "policy/fikit/key_names.h"
#include "policy/fikit/profile.h"

namespace fikit::broker {
namespace {

namespace fp = fikit_policy;

constexpr uint64_t kUs = 1000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222;

struct t_TmpDir {
  std::string path;
  t_TmpDir() {
    char tmpl[] = "/tmp/fikit-profile-test-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path = tmpl;
  }
  ~t_TmpDir() { std::filesystem::remove_all(path); }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream(std::filesystem::path(path) / file) << text;
  }
};

fp::TenantData t_learned(const char* name) {
  fp::FikitParams p;
  fp::TenantData td(1, name, kPriorityHigh, p);
  fp::KeyStats& a = td.keys.touch(kKeyHp);
  a.seen = 10;
  for (int i = 0; i < 10; i++) {
    a.duration.add(100 * kUs);
    fp::gap_observed(a, 300 * kUs);
    td.all_gaps.add(300 * kUs);
  }
  a.duration_samples = 10;
  a.factor = 0.25;
  a.fill_misses = 2;
  fp::KeyStats& b = td.keys.touch(kKeyLp);  // most recent
  b.duration.add(5 * kUs);
  td.delays.add(3 * kUs);
  return td;
}

TEST(FikitProfile, SaveThenLoadRestoresWhatWasLearned) {
  t_TmpDir dir;
  fp::TenantData td = t_learned("serve");
  std::string err;
  ASSERT_TRUE(fp::profile_save(td, dir.path, &err)) << err;
  EXPECT_TRUE(std::filesystem::exists(fp::profile_path(dir.path, "serve")));
  fp::FikitParams p;
  fp::TenantData back(7, "serve", kPriorityHigh, p);
  ASSERT_TRUE(fp::profile_load(&back, dir.path, &err)) << err;
  ASSERT_EQ(back.keys.size(), 2u);
  const fp::KeyStats* a = back.keys.find(kKeyHp);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->seen, 10u);
  EXPECT_EQ(a->factor, 0.25);
  EXPECT_EQ(a->fill_misses, 2u);
  EXPECT_EQ(a->duration.quantile_high(0.99), td.keys.find(kKeyHp)->duration.quantile_high(0.99));
  ASSERT_TRUE(a->gaps);
  EXPECT_EQ(a->gaps->quantile_low(0.1), td.keys.find(kKeyHp)->gaps->quantile_low(0.1));
  EXPECT_EQ(back.all_gaps.total(), 10u);
  EXPECT_EQ(back.delays.total(), 1u);
  EXPECT_EQ(back.keys.by_recency().front().key, kKeyLp);  // recency order kept
}

TEST(FikitProfile, NoFileIsNotAnError) {
  t_TmpDir dir;
  fp::FikitParams p;
  fp::TenantData td(1, "nobody", 0, p);
  std::string err = "x";
  EXPECT_FALSE(fp::profile_load(&td, dir.path, &err));
  EXPECT_TRUE(err.empty());
}

TEST(FikitProfile, NameIsSanitisedIntoOneFile) {
  // Keyed by (uid, name); bytes outside [A-Za-z0-9_-] are %XX, so no two names share a file.
  EXPECT_EQ(fp::profile_path("/d", "a/../b c"), "/d/a%2F..%2Fb%20c.json");
  EXPECT_EQ(fp::profile_path("/d", ".hidden"), "/d/%2Ehidden.json");
  EXPECT_EQ(fp::profile_path("/d", ""), "/d/%.json");
  EXPECT_EQ(fp::profile_path("/d", "serve", 1000), "/d/u1000/serve.json");
}

// A bad file: load fails with a message naming the file and the problem; td is unchanged.
void t_expect_rejected(const std::string& text, const std::string& why) {
  t_TmpDir dir;
  dir.write("serve.json", text);
  fp::FikitParams p;
  fp::TenantData td(1, "serve", 0, p);
  td.keys.touch(77);
  std::string err;
  EXPECT_FALSE(fp::profile_load(&td, dir.path, &err));
  EXPECT_NE(err.find("failed to load profile " + dir.path + "/serve.json"), std::string::npos)
      << err;
  EXPECT_NE(err.find(why), std::string::npos) << err;
  EXPECT_EQ(td.keys.size(), 1u);
  EXPECT_NE(td.keys.find(77), nullptr);
}

TEST(FikitProfile, CorruptFileIsRejectedClearly) {
  t_expect_rejected("{\"format\": \"fikit-profile\", \"vers", "not valid JSON");
  t_expect_rejected("[1, 2, 3]", "not a fikit profile");
  std::string good = fp::profile_to_json(t_learned("serve"));
  auto j = nlohmann::json::parse(good);
  j["keys"][0]["duration"] = {{9999, 1}};
  t_expect_rejected(j.dump(), "key #0: bad bucket list in duration");
  j = nlohmann::json::parse(good);
  j["keys"][1]["key"] = "zz";
  t_expect_rejected(j.dump(), "key #1");
  j = nlohmann::json::parse(good);
  j["keys"][0].erase("factor");
  t_expect_rejected(j.dump(), "factor");
}

TEST(FikitProfile, ForeignVersionOrTenantIsRejected) {
  auto j = nlohmann::json::parse(fp::profile_to_json(t_learned("serve")));
  j["version"] = 99;
  t_expect_rejected(j.dump(), "profile version 99, this broker reads version 1");
  j["version"] = 1;
  j["histogram"]["sub_bits"] = 3;
  t_expect_rejected(j.dump(), "histogram geometry");
  t_expect_rejected(fp::profile_to_json(t_learned("other")), "profile of tenant 'other'");
}

TEST(FikitProfile, CliShowExportImportList) {
  t_TmpDir dir;
  std::string err, out, json;
  ASSERT_TRUE(fp::profile_save(t_learned("serve"), dir.path, &err)) << err;
  ASSERT_TRUE(fikit_profile_show(dir.path, "serve", &out, &err)) << err;
  EXPECT_NE(out.find("profile of 'serve'"), std::string::npos) << out;
  EXPECT_NE(out.find("0x0000000000001111"), std::string::npos) << out;
  EXPECT_NE(out.find("2 kernel keys"), std::string::npos) << out;
  ASSERT_TRUE(fikit_profile_export(dir.path, "serve", &json, &err)) << err;
  ASSERT_TRUE(fikit_profile_import(dir.path, "serve-copy", json, &err)) << err;
  ASSERT_TRUE(fikit_profile_show(dir.path, "serve-copy", &out, &err)) << err;
  EXPECT_EQ(fikit_profile_list(dir.path), (std::vector<std::string>{"serve", "serve-copy"}));
  EXPECT_FALSE(fikit_profile_show(dir.path, "missing", &out, &err));
  EXPECT_NE(err.find("no profile named 'missing'"), std::string::npos) << err;
  EXPECT_FALSE(fikit_profile_import(dir.path, "bad", "{", &err));
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/bad.json"));
}

// A key-name table as a tenant's segment holds it, written by hand (the client's writer is
// libfikit's; here the bytes are whatever a hostile tenant might leave).
struct t_NameTable {
  std::unique_ptr<KeyNameTable> t = std::make_unique<KeyNameTable>();
  void put(uint64_t key, const std::string& bytes) {
    uint32_t i = t->claimed.fetch_add(1);
    std::memset(t->entries[i].name, 0, kKeyNameLen);
    std::memcpy(t->entries[i].name, bytes.data(), std::min<size_t>(bytes.size(), kKeyNameLen));
    t->entries[i].kernel_key.store(key);
  }
};

TEST(FikitProfile, KernelNamesAreCollectedSavedAndShown) {
  t_TmpDir dir;
  fp::TenantData td = t_learned("serve");
  t_NameTable names;
  names.put(kKeyHp, "_Z6matmulPfS_i");
  names.put(kKeyLp, "evil\x1b[2Jname\xff");
  names.put(0x9999, "not_a_key_of_the_profile");
  fp::collect_key_names(td, names.t.get());
  ASSERT_EQ(td.key_names.size(), 2u);
  EXPECT_EQ(td.key_names[kKeyLp], "evil?[2Jname?") << "control bytes and bad UTF-8 replaced";
  std::string err, out;
  ASSERT_TRUE(fp::profile_save(td, dir.path, &err)) << err;
  ASSERT_TRUE(fikit_profile_show(dir.path, "serve", &out, &err)) << err;
  EXPECT_NE(out.find(" kernel\n"), std::string::npos) << out;
  EXPECT_NE(out.find("matmul(float*, float*, int)\n"), std::string::npos) << "demangled: " << out;
  EXPECT_NE(out.find("evil?[2Jname?\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  // A profile whose names are not what a tenant could have published is rejected.
  auto j = nlohmann::json::parse(fp::profile_to_json(td));
  j["keys"][0]["name"] = std::string(200, 'x');
  t_expect_rejected(j.dump(), "bad kernel name");
  j["keys"][0]["name"] = "tab\there";
  t_expect_rejected(j.dump(), "bad kernel name");
  j["keys"][0]["name"] = 7;
  t_expect_rejected(j.dump(), "key #0");
}

TEST(FikitProfile, KernelNamesAreCutWithAMarker) {
  EXPECT_EQ(fp::key_name_display("short", 40), "short");
  EXPECT_EQ(fp::key_name_display(std::string(30, 'a'), 10), std::string(9, 'a') + "~");
  // A name that filled the client's entry may have been cut by the client.
  EXPECT_EQ(fp::key_name_display(std::string(kKeyNameLen - 1, 'b'), 60),
            std::string(kKeyNameLen - 1, 'b') + "~");
  // A mangled name cut by the client does not demangle: shown as it is, marked.
  std::string cut_mangled = "_ZN5torch8autograd" + std::string(kKeyNameLen - 1 - 18, 'x');
  EXPECT_EQ(fp::key_name_display(cut_mangled, 60), cut_mangled + "~");
  // Cut on a UTF-8 boundary.
  EXPECT_EQ(fp::key_name_display("ab\xc3\xa9\xc3\xa9", 4), "ab~");
  EXPECT_EQ(fp::key_name_problem("ok"), "");
  EXPECT_NE(fp::key_name_problem(""), "");
  EXPECT_NE(fp::key_name_problem("caf\xe9"), "");
}

// Run an HP task with 300 us gaps and a LP task with 50 us kernels; return the LP grants the
// very first HP gap received.
size_t t_first_gap_grants(const std::string& dir, bool learn) {
  PolicyConfig cfg;
  cfg.profile_dir = dir;
  t_FakeSched s(cfg);
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t lp = s.add("train", kPriorityLow);
  uint64_t t = kNow;
  if (learn) {
    for (int i = 0; i < 5; i++) {
      s.lp_request(lp, kKeyLp, t);
      s.dispatch(t);
      s.lp_complete(lp, t, t + 50 * kUs);
      t += 60 * kUs;
    }
    for (int i = 0; i < 10; i++) {
      s.hp_launch(hp, kKeyHp, t);
      s.hp_complete(hp, t + 100 * kUs);
      t += 400 * kUs;
    }
    return 0;  // both profiles are saved when the tenants leave
  }
  s.hp_launch(hp, kKeyHp, t);
  s.hp_complete(hp, t + 100 * kUs);
  s.lp_request(lp, kKeyLp, t + 101 * kUs);
  return s.dispatch(t + 101 * kUs).size();
}

TEST(FikitProfile, KnownTaskIsScheduledWellFromItsFirstRequest) {
  t_TmpDir dir;
  EXPECT_EQ(t_first_gap_grants(dir.path, false), 0u);  // nothing known: no fill
  t_first_gap_grants(dir.path, true);
  EXPECT_TRUE(std::filesystem::exists(dir.path + "/serve.json"));
  EXPECT_TRUE(std::filesystem::exists(dir.path + "/train.json"));
  EXPECT_EQ(t_first_gap_grants(dir.path, false), 1u);
}

TEST(FikitProfile, BrokerStartsWithoutARejectedProfileAndKeepsTheFile) {
  t_TmpDir dir;
  dir.write("serve.json", "garbage");
  PolicyConfig cfg;
  cfg.profile_dir = dir.path;
  {
    t_FakeSched s(cfg);
    uint32_t hp = s.add("serve", kPriorityHigh);
    s.hp_launch(hp, kKeyHp, kNow);
    s.hp_complete(hp, kNow + 100 * kUs);
    std::string text = fikit_tenant_stats_text(s.state(), s.t(hp).info.id);
    EXPECT_NE(text.find("profile: rejected: failed to load profile"), std::string::npos) << text;
  }
  std::string kept, err;
  ASSERT_TRUE(fp::read_text_file(dir.path + "/serve.json", &kept, &err));
  EXPECT_EQ(kept, "garbage");  // left for the operator to look at
}

}  // namespace
}  // namespace fikit::broker
