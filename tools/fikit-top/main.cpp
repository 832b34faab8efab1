// fikit-top: a live view of the broker's tenants in the spirit of bpftop and nvtop (view.h), from
// its status requests (include/fikit/protocol.h ctl_request). ncurses, linked statically.
#include <curses.h>
#include <fikit/protocol.h>
#include <fikit/util.h>
#include <fikit/version.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "view.h"

namespace {

constexpr const char kUsage[] =
    R"(usage: fikit-top [--socket PATH] [--delay S] [--starve-after S] [--once]

A live view of the tenants of fikit-broker: per GPU, sparklines of the time
HP tenants kept it busy, LP kernels filled HP gaps, and it idled; the HP
tenants with launches per second, request latency p50/p99, slowdown against
their latency alone (- where the broker does not say), gap hits and misses;
the LP tenants with launches and grants per second and their harvest of HP
gaps, flagged as starving when they wait without a grant.

options:
  -s, --socket PATH     the broker's socket (default: $FIKIT_SOCKET, else
                        /run/fikit/broker.sock)
  -d, --delay S         seconds between samples (default 1)
  --starve-after S      flag an LP tenant waiting without a grant for longer
                        (default 5)
  --once                print one snapshot (two samples --delay apart) as
                        text and exit
  -h, --help            show this help message and exit
  --version             print the version, the ABI and the commit, and exit

keys: s sort (priority, launch rate, name), p pause, h help, q quit

EXAMPLES
  fikit-top                          # the default broker
  fikit-top -s /tmp/fikit.sock -d 2  # another socket, every 2 s
  fikit-top --once                   # one text snapshot, for scripts and logs

Exit status: 0; 3 if no broker runs on the socket; 1 on other errors; 2 on a
usage error.
)";

struct Options {
  std::string socket;
  double delay_s = 1;
  double starve_after_s = 5;
  bool once = false;
};

enum { kStarveAfter = 256, kOnce, kVersion };

int usage_error(const std::string& what) {
  fprintf(stderr, "fikit-top: %s (see --help)\n", what.c_str());
  return 2;
}

bool parse_seconds(const char* s, double* out) {
  char* end = nullptr;
  double v = strtod(s, &end);
  if (!*s || *end || !(v > 0) || v > 3600) return false;
  *out = v;
  return true;
}

// The broker's status document, or a null json with `err` (-errno of ctl_request).
nlohmann::json sample(const std::string& socket, int* err) {
  auto reply = std::make_unique<fikit::TextReply>();
  *err = fikit::ctl_request(socket.c_str(), fikit::MsgType::kStatus, reply.get(), 5000);
  if (*err != 0 || reply->status != 0) {
    if (*err == 0) *err = -EPROTO;
    return nullptr;
  }
  return nlohmann::json::parse(std::string(reply->text, reply->text_len), nullptr, false);
}

double mono_s() { return static_cast<double>(fikit::now_ns()) * 1e-9; }

int fail(const std::string& socket, int err) {
  if (err == -ENOENT || err == -ECONNREFUSED) {
    fprintf(stderr, "fikit-top: no fikit-broker is running on %s\n", socket.c_str());
    return 3;
  }
  fprintf(stderr, "fikit-top: failed to ask the broker on %s: %s\n", socket.c_str(),
          strerror(-err));
  return 1;
}

int run_once(const Options& o) {
  fikit::top::View view;
  int err = 0;
  for (int i = 0; i < 2; i++) {
    nlohmann::json doc = sample(o.socket, &err);
    if (doc.is_null() || doc.is_discarded()) return fail(o.socket, err ? err : -EPROTO);
    view.update(doc, mono_s());
    if (i == 0) usleep(static_cast<useconds_t>(o.delay_s * 1e6));
  }
  fikit::top::Settings st;
  st.starve_after_s = o.starve_after_s;
  for (const std::string& l : view.lines(st, 80, 24)) printf("%s\n", l.c_str());
  return 0;
}

int run_live(const Options& o) {
  fikit::top::View view;
  int err = 0;
  nlohmann::json doc = sample(o.socket, &err);
  if (doc.is_null() || doc.is_discarded()) return fail(o.socket, err ? err : -EPROTO);
  view.update(doc, mono_s());
  initscr();
  cbreak();
  noecho();
  curs_set(0);
  keypad(stdscr, TRUE);
  fikit::top::Settings st;
  st.starve_after_s = o.starve_after_s;
  double next = mono_s() + o.delay_s;
  for (;;) {
    erase();
    int rows = 0, cols = 0;
    getmaxyx(stdscr, rows, cols);
    std::vector<std::string> lines = view.lines(st, static_cast<size_t>(std::max(cols, 20)),
                                                static_cast<size_t>(std::max(rows, 5)));
    for (size_t i = 0; i < lines.size(); i++)
      mvaddnstr(static_cast<int>(i), 0, lines[i].c_str(), cols);
    refresh();
    timeout(std::max(0, static_cast<int>((next - mono_s()) * 1000)));
    int key = getch();
    if (key == 'q' || key == 'Q') break;
    if (st.help && key != ERR) {
      st.help = false;
      continue;
    }
    if (key == 'h' || key == '?') st.help = true;
    if (key == 'p') st.paused = !st.paused;
    if (key == 's')
      st.sort = st.sort == fikit::top::SortKey::kPriority     ? fikit::top::SortKey::kLaunchRate
                : st.sort == fikit::top::SortKey::kLaunchRate ? fikit::top::SortKey::kName
                                                              : fikit::top::SortKey::kPriority;
    if (mono_s() < next) continue;
    next = mono_s() + o.delay_s;
    if (st.paused) continue;
    nlohmann::json d = sample(o.socket, &err);
    if (!d.is_null() && !d.is_discarded()) view.update(d, mono_s());
  }
  endwin();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const option longs[] = {{"socket", required_argument, nullptr, 's'},
                          {"delay", required_argument, nullptr, 'd'},
                          {"starve-after", required_argument, nullptr, kStarveAfter},
                          {"once", no_argument, nullptr, kOnce},
                          {"help", no_argument, nullptr, 'h'},
                          {"version", no_argument, nullptr, kVersion},
                          {nullptr, 0, nullptr, 0}};
  Options o;
  const char* env = getenv("FIKIT_SOCKET");
  o.socket = env && *env ? env : fikit::kDefaultSocket;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":s:d:h", longs, nullptr)) != -1) {
    switch (c) {
      case 's':
        o.socket = optarg;
        break;
      case 'd':
        if (!parse_seconds(optarg, &o.delay_s)) return usage_error("--delay wants seconds > 0");
        break;
      case kStarveAfter:
        if (!parse_seconds(optarg, &o.starve_after_s))
          return usage_error("--starve-after wants seconds > 0");
        break;
      case kOnce:
        o.once = true;
        break;
      case 'h':
        fputs(kUsage, stdout);
        return 0;
      case kVersion:
        printf("%s\n", fikit::version_text("fikit-top").c_str());
        return 0;
      default:
        return usage_error(std::string(c == ':' ? "missing value for " : "unknown option ") +
                           argv[optind - 1]);
    }
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  return o.once ? run_once(o) : run_live(o);
}
