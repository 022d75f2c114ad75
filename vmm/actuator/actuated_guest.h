// What the actuator needs of a guest and of whoever owns the guests: the
// levers it pulls itself (pause, resume, pinning, balloon target) and the
// lifecycle changes it hands to the owner (power button with its timeout,
// poweroff, restart: those involve the supervisor's timers and back-off).
//
// Narrow on purpose: the actuator is tested with a fake guest and a fake
// owner (tests/unit/actuator/), no KVM needed. vmm/guest.h and vmm/host.h
// implement these for real guests.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vireo/actions.h"
#include "vmm/cpu_list.h"

namespace vireo {

class ActuatedGuest {
public:
    virtual ~ActuatedGuest() = default;
    virtual const std::string& name() const = 0;
    virtual uint64_t ram_bytes() const = 0;
    // Each lever checks everything first and changes nothing on error.
    virtual std::expected<void, Error> pause() = 0;
    virtual std::expected<void, Error> resume() = 0;
    virtual std::expected<void, Error> pin(unsigned vcpu, const CpuList& cpus) = 0;
    virtual std::expected<void, Error> unpin(std::optional<unsigned> vcpu) = 0;
    // Per vCPU: the CPUs it is pinned to, nullopt if not pinned.
    virtual const std::vector<std::optional<CpuList>>& pinning() const = 0;
    virtual std::expected<void, Error> set_balloon_target(uint64_t bytes) = 0;
    virtual uint64_t balloon_target() const = 0;

protected:
    ActuatedGuest() = default;
    ActuatedGuest(const ActuatedGuest&) = default;
    ActuatedGuest& operator=(const ActuatedGuest&) = default;
};

class GuestRegistry {
public:
    virtual ~GuestRegistry() = default;
    virtual ActuatedGuest* find(std::string_view name) = 0;
    // ACPI power button; poweroff if the guest still runs after `timeout`.
    virtual std::expected<void, Error> shutdown(ActuatedGuest& g, std::chrono::milliseconds timeout) = 0;
    // A stopped guest waiting for its restart stays stopped instead.
    virtual std::expected<void, Error> poweroff(ActuatedGuest& g, const Origin& o) = 0;
    virtual std::expected<void, Error> restart(ActuatedGuest& g, const Origin& o) = 0;
    // The guest runs again after a pause (which was not a hang).
    virtual void resumed(ActuatedGuest& g) = 0;

protected:
    GuestRegistry() = default;
};

}  // namespace vireo
