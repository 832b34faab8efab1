// The substrate's part of `fikit-broker status`: the "substrate" member of the status document
// (its value is Substrate::status_json(): kind, why, mps_pipe_dir, mps_log_dir, mps_daemon_pid,
// switch_cost_us, switch_cost_source) drawn as a line of the table.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace fikit::broker {

// The line for people, from the member's value.
std::string substrate_status_text(const nlohmann::json& value);

}  // namespace fikit::broker
