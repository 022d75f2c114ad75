// A watchdog the guest must keep feeding: the iBASE IB700 ISA watchdog
// (QEMU's `-device ib700`), two write-only ports.
//
// Why this one: vireo's machine has no PCI bus, which rules out the
// i6300esb; the virtio spec defines no watchdog device. The IB700 is an ISA
// port device that stock Linux drives (ib700wdt -> /dev/watchdog, so
// systemd's RuntimeWatchdogSec or any watchdog daemon works unchanged), and
// ring-3 code such as vireo's test guest can feed it with one `out`.
//
//  0x443 write V: arm (or re-arm) with a timeout of 30 - 2 * (V & 15)
//                 seconds (the IB700 table: 0 -> 30 s ... 15 -> 0 s);
//  0x441 write:   disarm.
// Reads return 0xff (nothing there), as on the real card.
//
// The host may override the guest's timeout (`timeout` in the config):
// an administrator who wants "dead within 10 s" should not depend on what
// the guest asks for. Expiry is checked by the host's health tick
// (expired()), which stops the guest with StopReason::Watchdog.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "vmm/devices/device.h"

namespace vireo {

class Ib700Watchdog final : public Device {
public:
    static constexpr uint16_t kBase = 0x441;  // the window spans 0x441-0x443
    static constexpr uint64_t kWindowSize = 3;
    static constexpr uint64_t kStopOffset = 0;   // 0x441
    static constexpr uint64_t kStartOffset = 2;  // 0x443

    // `override_timeout`: use this instead of what the guest writes.
    explicit Ib700Watchdog(std::optional<std::chrono::milliseconds> override_timeout = std::nullopt);

    std::string_view name() const override { return "ib700-watchdog"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // The guest's timeout for value V written to 0x443.
    static std::chrono::milliseconds timeout_for(uint8_t value);

    bool armed() const { return deadline_ns_.load(std::memory_order_acquire) != kDisarmed; }
    // Expired at `now` (monotonic ns): the evidence for the log, else nullopt.
    std::optional<std::string> expired(uint64_t now_ns) const;
    uint64_t pings() const { return pings_.load(std::memory_order_relaxed); }

private:
    static constexpr uint64_t kDisarmed = UINT64_MAX;
    std::optional<std::chrono::milliseconds> override_;
    std::atomic<uint64_t> deadline_ns_{kDisarmed};
    std::atomic<uint64_t> timeout_ms_{0};
    std::atomic<uint64_t> last_ping_ns_{0};
    std::atomic<uint64_t> pings_{0};
};

}  // namespace vireo
