// The metrics endpoint's parts: the exposition format (escaping, values, histograms), the
// HTTP/1.1 responder on a UringLoop (GET, HEAD, 404, 405, 400, a request in pieces, a page
// larger than a socket buffer), --metrics addresses, Kubernetes pods from cgroup paths, and the
// metrics page of a status document (a departed tenant's final counts). The whole path with a
// real Prometheus: tests/metrics/prometheus_test.py.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/kube_pod.h"
#include "base/uring_loop.h"
#include "metrics/exposition.h"
#include "metrics/http_server.h"
#include "metrics/metrics.h"

namespace fikit::broker::metrics {
namespace {

using ::fikit::broker::kube_names;
using ::fikit::broker::kube_ref_of_cgroup;
using ::fikit::broker::KubeRef;

using nlohmann::json;

TEST(Exposition, EscapesLabelValuesAndKeepsThemUtf8) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_label_value("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(escape_label_value("caf\xe9"), "caf\xef\xbf\xbd") << "Latin-1 byte: U+FFFD";
  EXPECT_EQ(escape_label_value("\xc0\x80"), "\xef\xbf\xbd\xef\xbf\xbd") << "overlong";
}

TEST(Exposition, ValuesAndFamilies) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  Exposition e;
  e.family("fikit_x_total", "counter", "A help\nwith a newline and a \\.");
  e.sample("fikit_x_total", {{"tenant", "a b"}}, 7);
  e.histogram("fikit_y_seconds", {{"gpu", "0"}}, {0.001, 0.01}, {2, 5}, 0.03, 6);
  EXPECT_EQ(e.text(),
            "# HELP fikit_x_total A help\\nwith a newline and a \\\\.\n"
            "# TYPE fikit_x_total counter\n"
            "fikit_x_total{tenant=\"a b\"} 7\n"
            "fikit_y_seconds_bucket{gpu=\"0\",le=\"0.001\"} 2\n"
            "fikit_y_seconds_bucket{gpu=\"0\",le=\"0.01\"} 5\n"
            "fikit_y_seconds_bucket{gpu=\"0\",le=\"+Inf\"} 6\n"
            "fikit_y_seconds_sum{gpu=\"0\"} 0.03\n"
            "fikit_y_seconds_count{gpu=\"0\"} 6\n");
}

TEST(ListenAddress, ParsesAndRefuses) {
  Result<ListenAddress> a = parse_listen_address("127.0.0.1:9842");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9842);
  a = parse_listen_address("[::1]:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(parse_listen_address("localhost:1")->host, "127.0.0.1");
  for (const char* bad : {"9842", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", "example.com:1"})
    EXPECT_FALSE(parse_listen_address(bad).ok()) << bad;
  EXPECT_NE(parse_listen_address("9842").status().message().find("ADDR:PORT"), std::string::npos);
}

constexpr const char* kUid = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b";
constexpr const char* kUidSystemd = "5e6f7a8b_1c2d_4e3f_9a0b_1c2d3e4f5a6b";
const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// /proc/<pid>/cgroup as the kernel writes it for containers of the common runtimes, under both
// kubelet cgroup drivers, on cgroup v2 and v1.
TEST(KubePod, CgroupPathsOfBothDriversAndTheRuntimes) {
  struct Case {
    std::string text;
    bool container;
  };
  const std::vector<Case> cases = {
      // cgroupfs driver, containerd (v2)
      {"0::/kubepods/burstable/pod" + std::string(kUid) + "/" + kId + "\n", true},
      // cgroupfs, Guaranteed QoS (no QoS level), v1 with several hierarchies
      {"12:memory:/kubepods/pod" + std::string(kUid) + "/" + kId +
           "\n11:cpu,cpuacct:/kubepods/pod" + kUid + "/" + kId + "\n0::/\n",
       true},
      // systemd driver, containerd
      {"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
           std::string(kUidSystemd) + ".slice/cri-containerd-" + kId + ".scope\n",
       true},
      // systemd driver, CRI-O
      {"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
           std::string(kUidSystemd) + ".slice/crio-" + kId + ".scope\n",
       true},
      // systemd driver, Guaranteed, docker (cri-dockerd)
      {"0::/kubepods.slice/kubepods-pod" + std::string(kUidSystemd) + ".slice/docker-" + kId +
           ".scope\n",
       true},
      // kind: a node in a container, systemd driver below the node's own cgroup
      {"0::/system.slice/docker-aaaa.scope/kubelet.slice/kubelet-kubepods.slice/"
       "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" +
           std::string(kUidSystemd) + ".slice/cri-containerd-" + kId + ".scope\n",
       true},
      // a process in the pod's cgroup itself (no container below it)
      {"0::/kubepods/besteffort/pod" + std::string(kUid) + "\n", false},
      // CRI-O's container monitor is no container
      {"0::/kubepods.slice/kubepods-pod" + std::string(kUidSystemd) + ".slice/crio-conmon-" + kId +
           ".scope\n",
       false},
  };
  for (const Case& c : cases) {
    KubeRef r = kube_ref_of_cgroup(c.text);
    EXPECT_EQ(r.pod_uid, kUid) << c.text;
    EXPECT_EQ(r.container_id, c.container ? kId : "") << c.text;
  }
  for (const char* none :
       {"0::/user.slice/user-1000.slice/session-2.scope\n", "0::/\n", "",
        "0::/kubepods/burstable/pod../../etc/\n", "0::/kubepods/burstable/podnot-a-uuid/x\n",
        "garbage without colons kubepods\n",
        "0::/kubepods/burstable/pod5E6F7A8B-1C2D-4E3F-9A0B-1C2D3E4F5A6B/x\n"})
    EXPECT_TRUE(kube_ref_of_cgroup(none).pod_uid.empty()) << none;
}

// The kubelet's log links name the pod, its namespace and the container; what is not a
// well-formed name is ignored.
TEST(KubePod, NamesFromTheKubeletsLogs) {
  char tmpl[] = "/tmp/fikit-kube-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  std::filesystem::create_directories(root + "/containers");
  std::filesystem::create_directories(root + "/pods/ml_resnet-serve-7d9f_" + std::string(kUid));
  auto touch = [&](const std::string& f) { std::ofstream(root + "/containers/" + f) << ""; };
  touch("other-pod_ml_x-" + std::string(64, 'f') + ".log");
  touch("Bad_NAME_x-" + kId + ".log");
  KubeRef r;
  r.pod_uid = kUid;
  r.container_id = kId;
  kube_names(&r, root);
  EXPECT_EQ(r.pod, "resnet-serve-7d9f") << "from /var/log/pods when no container link is good";
  EXPECT_EQ(r.ns, "ml");
  EXPECT_EQ(r.container, "");
  touch("resnet-serve-7d9f_ml_infer-" + kId + ".log");
  r = KubeRef{kUid, kId, "", "", ""};
  kube_names(&r, root);
  EXPECT_EQ(r.pod, "resnet-serve-7d9f");
  EXPECT_EQ(r.ns, "ml");
  EXPECT_EQ(r.container, "infer");
  r = KubeRef{};
  kube_names(&r, root);
  EXPECT_EQ(r.pod, "") << "no pod, no names";
  std::filesystem::remove_all(root);
}

// An HTTP server on a loop thread; request() sends raw bytes and reads the whole answer.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(loop_.init(), 0);
    server_ = std::make_unique<HttpServer>(loop_, "/metrics", [this] {
      return HttpServer::Page{kExpositionContentType, body_};
    });
    ASSERT_TRUE(server_->listen({"127.0.0.1", 0}).ok());
    ASSERT_GT(loop_.add_timer(1'000'000,
                              [this] {
                                if (stop_) loop_.stop();
                              }),
              0);
    thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override {
    stop_ = true;
    thread_.join();
    server_.reset();
  }
  std::string request(const std::vector<std::string>& pieces) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    for (const std::string& p : pieces) {
      EXPECT_EQ(send(fd, p.data(), p.size(), MSG_NOSIGNAL), static_cast<ssize_t>(p.size()));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  }

  UringLoop loop_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::string body_ = "fikit_up 1\n";
};

TEST_F(HttpServerTest, GetHeadAndErrors) {
  std::string r = request({"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"});
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Length: 11\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\n\r\nfikit_up 1\n"), std::string::npos) << r;
  r = request({"GET /metrics?x=1 HTTP/1.0\r\n\r\n"});
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u) << "a query string is ignored: " << r;
  r = request({"HEAD /metrics HTTP/1.1\r\n\r\n"});
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u) << r;
  EXPECT_EQ(r.find("fikit_up"), std::string::npos) << "HEAD: no body";
  EXPECT_EQ(request({"GET / HTTP/1.1\r\n\r\n"}).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(request({"POST /metrics HTTP/1.1\r\n\r\n"}).rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(request({"hello\r\n\r\n"}).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(request({std::string(9000, 'x')}).rfind("HTTP/1.1 431", 0), 0u);
}

TEST_F(HttpServerTest, RequestInPiecesAndAPageLargerThanASocketBuffer) {
  body_ = std::string(8 << 20, 'm') + "\n";
  std::string r = request({"GET /met", "rics HTTP/1.1\r\n", "Host: x\r\n\r\n"});
  ASSERT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u) << r.substr(0, 100);
  EXPECT_EQ(r.size() - (r.find("\r\n\r\n") + 4), body_.size());
}

TEST(MetricsPage, TenantsAndDepartedTenantsWithTheirLabels) {
  json t{{"id", 1},       {"pid", 0},        {"uid", 1000},  {"name", "serve"},
         {"priority", 0}, {"launches", 250}, {"granted", 0}, {"busy_s", 1.5}};
  json gone{{"id", 2},       {"pid", 0},
            {"uid", 1001},   {"name", "train \"x\""},
            {"priority", 2}, {"launches", 9},
            {"granted", 9},  {"policy", {{"fill_busy_ns", 2'500'000'000}}}};
  json in_pod{{"id", 3},
              {"uid", 1002},
              {"name", "trainer"},
              {"priority", 2},
              {"launches", 9},
              {"granted", 9},
              {"kubernetes",
               {{"pod_uid", kUid}, {"pod", "trainer-0"}, {"namespace", "ml"}, {"container", ""}}},
              {"grant_latency",
               {{"count", 9}, {"sum_s", 0.0045}, {"le_s", {1e-5, 1e-3}}, {"cumulative", {2, 9}}}}};
  json doc{{"version", "0.1.0"},
           {"broker", {{"abi", "1.0"}, {"policy", "fikit"}, {"tenants", 1}}},
           {"gpus", json::array({{{"index", 0}, {"uuid", "GPU-1"}}})},
           {"tenants", json::array({t, in_pod})},
           {"departed_tenants", json::array({gone})}};
  MetricsPage page;
  const std::string text = page.page(doc);
  EXPECT_NE(text.find("fikit_tenant_launches_total{gpu=\"GPU-1\",tenant=\"serve\",tenant_id=\"1\","
                      "uid=\"1000\",priority=\"0\",class=\"hp\"} 250\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tenant=\"train \\\"x\\\"\",tenant_id=\"2\",uid=\"1001\",priority=\"2\","
                      "class=\"lp\"} 9\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fikit_tenant_lp_harvest_seconds_total{gpu=\"GPU-1\",tenant=\"train "),
            std::string::npos);
  EXPECT_NE(text.find("class=\"lp\"} 2.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fikit_build_info{version=\"0.1.0\",abi=\"1.0\",policy=\"fikit\","
                      "substrate=\"\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fikit_tenants{gpu=\"GPU-1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fikit_tenant_busy_seconds_total{gpu=\"GPU-1\",tenant=\"serve\""),
            std::string::npos)
      << text;
  // The pod's labels (an empty container name is left out), and the grant latency histogram.
  const std::string pod =
      "class=\"lp\",pod_uid=\"" + std::string(kUid) + "\",pod=\"trainer-0\",namespace=\"ml\"";
  EXPECT_NE(text.find(pod + "} 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE fikit_grant_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("fikit_grant_latency_seconds_bucket{gpu=\"GPU-1\",tenant=\"trainer\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(pod + ",le=\"0.001\"} 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find(pod + ",le=\"+Inf\"} 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fikit_grant_latency_seconds_count{"), std::string::npos) << text;
  EXPECT_EQ(text.find("fikit_grant_latency_seconds_bucket{gpu=\"GPU-1\",tenant=\"serve\""),
            std::string::npos)
      << "no histogram for a tenant without grants";
}

}  // namespace
}  // namespace fikit::broker::metrics
