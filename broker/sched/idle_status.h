// The HP idleness meter's part of `fikit-broker status`: the "hp_idle" member of the status
// document (its value is IdleMeter::summary_json(), idle_meter.h; present only with
// --hp-marker-every) drawn as a line of the table.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace fikit::broker {

// The line for people, from the member's value.
std::string idle_status_text(const nlohmann::json& value);

}  // namespace fikit::broker
