// What the control requests and the metrics page read and act through: the
// guests by name, the actuator (every change), the supervisor's restart
// state, the event bus, and plain facts about the process and its
// endpoints. Host implements it; the request handler and the metrics
// renderer take a HostView, so they sit below Host in the layers and a
// unit test can hand them a fake.
//
// Loop thread only, like everything Host owns.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/actuator/guest_actuator.h"
#include "vmm/cpu_list.h"
#include "vmm/event_bus.h"
#include "vmm/guest.h"
#include "vmm/supervisor/supervisor.h"

namespace vireo {

// The endpoints' counters as numbers, so their readers need not know the
// endpoint classes. An absent endpoint is nullopt.
struct EndpointStats {
    struct Control {
        std::string path;
        uint64_t clients = 0;
        uint64_t accepted = 0;
        uint64_t lines = 0;
        uint64_t refused_peers = 0;
        uint64_t refused_full = 0;
        uint64_t oversize = 0;
        uint64_t dropped_slow = 0;
        uint64_t requests = 0;                     // answered
        std::map<std::string, uint64_t> errors;    // answered with an error, by code
    };
    struct Metrics {
        std::string address;  // host:port
        uint64_t scrapes = 0;
        uint64_t refused = 0;  // over the limit or a bad request
    };
    std::optional<Control> control;
    std::optional<Metrics> metrics;
};

class HostView {
public:
    virtual ~HostView() = default;

    virtual std::string_view name() const = 0;
    virtual std::chrono::steady_clock::time_point started() const = 0;
    virtual const CpuList& allowed_cpus() const = 0;

    virtual const std::vector<std::unique_ptr<Guest>>& guests() const = 0;
    virtual Guest* find(std::string_view name) = 0;  // nullptr: no such guest

    virtual GuestActuator& actuator() = 0;
    virtual const GuestActuator& actuator() const = 0;
    virtual const Supervisor& supervisor() const = 0;
    virtual EventBus& bus() = 0;
    virtual const EventBus& bus() const = 0;

    virtual EndpointStats endpoint_stats() const = 0;
};

}  // namespace vireo
