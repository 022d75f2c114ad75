// Actions and decision-log records as the control protocol and the event
// bus show them: {"kind": "pin", "guest": "web", "vcpu": 0, "cpus": [1]}.
#pragma once

#include <nlohmann/json.hpp>

#include "vireo/actions.h"
#include "vmm/action_log.h"

namespace vireo {

nlohmann::json to_json(const Action& action);
nlohmann::json to_json(const ActionRecord& record);
nlohmann::json to_json(const ControllerLimits& limits);
nlohmann::json to_json(const GuestControl& control);

}  // namespace vireo
