// Decision trace: reserve at open, so that add() never allocates; one CSV at exit.
#include "policy/fikit/trace.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fikit::broker::fikit_policy {

void Trace::open_from_env(uint32_t gpu) {
  const char* path = std::getenv("FIKIT_TRACE");
  if (!path || !*path) return;
  size_t cap = 4u << 20;
  if (const char* n = std::getenv("FIKIT_TRACE_RECORDS")) cap = std::strtoull(n, nullptr, 10);
  records_.reserve(cap ? cap : 1);
  path_ = path;
  if (gpu > 0) path_ += ".gpu" + std::to_string(gpu);
}

std::string Trace::write() const {
  if (path_.empty()) return "";
  FILE* f = std::fopen(path_.c_str(), "w");
  if (!f) return "failed to write the decision trace " + path_ + ": " + std::strerror(errno);
  std::fprintf(f, "# fikit decision trace; records dropped (capacity reached): %llu\n",
               static_cast<unsigned long long>(dropped_));
  std::fprintf(f, "t_ns,kind,tenant,key,verdict,a,b\n");
  for (const TraceRecord& r : records_)
    std::fprintf(f, "%llu,%c,%u,%llx,%u,%llu,%llu\n", static_cast<unsigned long long>(r.t_ns),
                 static_cast<char>(r.kind), r.tenant, static_cast<unsigned long long>(r.key),
                 static_cast<unsigned>(r.verdict), static_cast<unsigned long long>(r.a),
                 static_cast<unsigned long long>(r.b));
  bool ok = std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return "failed to write the decision trace " + path_ + ": " + std::strerror(errno);
  return "";
}

}  // namespace fikit::broker::fikit_policy
