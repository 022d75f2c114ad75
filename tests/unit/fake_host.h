// A HostView without KVM for the request handler's and the metrics
// renderer's tests: real Guest objects that are never started (no Machine),
// a real actuator and supervisor whose hooks run at once or never, and
// endpoint counters the test sets.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "vmm/host_view.h"

namespace vireo::test {

class FakeHost final : public HostView, public GuestRegistry {
public:
    explicit FakeHost(const std::vector<std::string>& names, ControllerMode mode = ControllerMode::Off)
        : actuator_(*this, actuator_hooks(), mode, ControllerLimits{}), supervisor_(bus_, supervisor_hooks()) {
        for (const auto& n : names) {
            GuestConfig c;
            c.machine.name = n;
            c.machine.cpus = 2;
            c.machine.mem_bytes = 256ull << 20;
            guests_.push_back(std::make_unique<Guest>(c, allowed_, [](Guest&, GuestState, GuestState, const std::string&) {}));
            supervisor_.add(*guests_.back(), c.restart, c.hang);
        }
    }

    // HostView
    std::string_view name() const override { return "fake"; }
    std::chrono::steady_clock::time_point started() const override { return started_; }
    const CpuList& allowed_cpus() const override { return allowed_; }
    const std::vector<std::unique_ptr<Guest>>& guests() const override { return guests_; }
    Guest* find(std::string_view name) override {
        for (auto& g : guests_)
            if (g->name() == name) return g.get();
        return nullptr;
    }
    GuestActuator& actuator() override { return actuator_; }
    const GuestActuator& actuator() const override { return actuator_; }
    const Supervisor& supervisor() const override { return supervisor_; }
    EventBus& bus() override { return bus_; }
    const EventBus& bus() const override { return bus_; }
    EndpointStats endpoint_stats() const override { return endpoints; }

    // GuestRegistry: lifecycle requests are recorded, never carried out.
    std::expected<void, Error> shutdown(ActuatedGuest& g, std::chrono::milliseconds) override {
        calls.push_back("shutdown " + g.name());
        return {};
    }
    std::expected<void, Error> poweroff(ActuatedGuest& g, const Origin&) override {
        calls.push_back("poweroff " + g.name());
        return std::unexpected(Error{ErrorCode::Conflict, "guest '" + g.name() + "' is not running"});
    }
    std::expected<void, Error> restart(ActuatedGuest& g, const Origin&) override {
        calls.push_back("restart " + g.name());
        return {};
    }
    void resumed(ActuatedGuest& g) override { calls.push_back("resumed " + g.name()); }

    EndpointStats endpoints;
    std::vector<std::string> calls;

private:
    static GuestActuator::Hooks actuator_hooks() {
        GuestActuator::Hooks h;
        h.post = [](std::function<void()> task) { task(); };
        h.decided = [](const ActionRecord&) {};
        return h;
    }
    static Supervisor::Hooks supervisor_hooks() {
        Supervisor::Hooks h;
        h.now = [] { return Supervisor::Clock::now(); };
        h.realtime_ns = [] { return int64_t(0); };
        h.after = [](std::chrono::milliseconds, std::function<void()>) { return Supervisor::TimerId(1); };
        h.cancel = [](Supervisor::TimerId) {};
        h.restart = [](SupervisedGuest&, const std::string&) {};
        return h;
    }

    CpuList allowed_{0, 1};
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    EventBus bus_;
    std::vector<std::unique_ptr<Guest>> guests_;
    GuestActuator actuator_;
    Supervisor supervisor_;
};

}  // namespace vireo::test
