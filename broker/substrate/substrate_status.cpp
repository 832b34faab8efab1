#include "substrate/substrate_status.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace fikit::broker {

std::string substrate_status_text(const nlohmann::json& s) {
  char buf[600];
  std::string pipe = s.value("mps_pipe_dir", std::string());
  snprintf(buf, sizeof(buf), "substrate %s (%s)%s%s, switch-back cost %.0f us (%s)\n",
           s.value("kind", std::string("?")).c_str(), s.value("why", std::string()).c_str(),
           pipe.empty() ? "" : ", MPS pipe directory ", pipe.c_str(),
           s.value("switch_cost_us", 0.0), s.value("switch_cost_source", std::string()).c_str());
  return buf;
}

}  // namespace fikit::broker
