// The loop thread's half of the controller's snapshot (snapshot_builder.h
// has the other): what only the host's loop thread may read -- the guests,
// their pinning and balloons, the actuator's mode, limits and overrides.
// Apart from the builder so that vireoctl record, which gathers the same
// half over the control socket, links no guest or device code.
#pragma once

#include <memory>
#include <vector>

#include "vmm/agent_runner/snapshot_builder.h"
#include "vmm/cpu_list.h"

namespace vireo {

class Guest;
class GuestActuator;

namespace agent_runner {

// Loop thread only: the guests, and the actuator's mode, limits and
// overrides; `allowed`: the host CPUs this process may use.
HostPart gather_from_host(const GuestActuator& actuator, const std::vector<std::unique_ptr<Guest>>& guests,
                          const CpuList& allowed);

}  // namespace agent_runner
}  // namespace vireo
