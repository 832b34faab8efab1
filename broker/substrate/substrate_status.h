// The substrate's and the HP idleness meter's parts of `fikit-broker status`: the JSON members
// "substrate" (substrate.h: kind, why, mps_pipe_dir, mps_log_dir, mps_daemon_pid, switch_cost_us,
// switch_cost_source) and "hp_idle" (idle_meter.h; only with --hp-marker-every), and their lines
// in the table.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace fikit::broker {

class Substrate;
class IdleMeter;

// `doc` (the status JSON object) with the members added, unless that would make it longer than
// max_len. `meter` may be nullptr.
std::string add_substrate_status(const std::string& doc, const Substrate& s, const IdleMeter* meter,
                                 size_t max_len);

// Lines for people ("" for a broker without these members).
std::string substrate_status_text(const nlohmann::json& doc);

}  // namespace fikit::broker
