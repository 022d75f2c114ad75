#include "vmm/devices/acpi_pm.h"

#include <optional>

#include "vmm/log.h"

namespace vireo {

namespace {
// Status bits that raise the SCI when their enable bit is set.
constexpr uint16_t kSciEvents = AcpiPm::kTmrSts | AcpiPm::kGblSts | AcpiPm::kPwrBtnSts | AcpiPm::kSlpBtnSts |
                                AcpiPm::kRtcSts;
constexpr uint16_t kSlpTypMask = 0x7 << AcpiPm::kSlpTypShift;
}  // namespace

AcpiPm::AcpiPm(StopSink& stop, InterruptLine& sci)
    : stop_(stop), sci_(sci), timer_start_(std::chrono::steady_clock::now()) {}

uint32_t AcpiPm::timer_value() const {
    // No lock: the timer is a pure function of the monotonic clock, so a
    // guest using it as its clocksource pays only for clock_gettime.
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - timer_start_);
    // 128-bit product: ns * 3579545 overflows 64 bits after ~43 minutes.
    unsigned __int128 ticks = static_cast<unsigned __int128>(ns.count() > 0 ? ns.count() : 0) * kTimerHz / 1000000000u;
    return uint32_t(ticks) & kTimerMask;
}

void AcpiPm::update_sci() {
    bool level = (status_ & enable_ & kSciEvents) != 0;
    if (level != sci_level_) {
        sci_level_ = level;
        sci_.set_level(level);
    }
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
    if (offset >= kTimerOffset && offset < kTimerOffset + 4 && data.size() <= kTimerOffset + 4 - offset) {
        // The clocksource path: a timer-only read takes no lock.
        uint32_t t = timer_value();
        for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(t >> (8 * (offset - kTimerOffset + i)));
        return;
    }
    std::optional<uint32_t> timer;  // one sample per access, so its bytes agree
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
        unsigned shift = 8 * (at & 1);
        switch (at) {
            case kStatusOffset:
            case kStatusOffset + 1: data[i] = uint8_t(status_ >> shift); break;
            case kEnableOffset:
            case kEnableOffset + 1: data[i] = uint8_t(enable_ >> shift); break;
            case kControlOffset:
            case kControlOffset + 1: data[i] = uint8_t(uint16_t(control_ | kSciEn) >> shift); break;
            case kTimerOffset:
            case kTimerOffset + 1:
            case kTimerOffset + 2:
            case kTimerOffset + 3:
                if (!timer) timer = timer_value();
                data[i] = uint8_t(*timer >> (8 * (at - kTimerOffset)));
                break;
            case kWindowSize: data[i] = 0xff; break;  // beyond our ports
            default: data[i] = 0; break;             // reserved
        }
    }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
    std::optional<uint16_t> sleep_type;
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < data.size(); ++i) {
            uint64_t at = offset < kWindowSize && i < kWindowSize - offset ? offset + i : kWindowSize;
            unsigned shift = 8 * (at & 1);
            uint16_t v = uint16_t(data[i]) << shift;
            uint16_t byte_mask = uint16_t(0xff << shift);
            switch (at) {
                case kStatusOffset:
                case kStatusOffset + 1: status_ &= ~v; break;  // write 1 to clear
                case kEnableOffset:
                case kEnableOffset + 1: enable_ = (enable_ & ~byte_mask) | v; break;
                case kControlOffset:
                case kControlOffset + 1:
                    control_ = uint16_t((control_ & ~byte_mask) | (v & ~kSlpEn)) | kSciEn;
                    if (v & kSlpEn) sleep_type = (v & kSlpTypMask) >> kSlpTypShift;
                    break;
                default: break;  // reserved, the read-only timer, or beyond our ports
            }
        }
        update_sci();
    }
    if (!sleep_type) return;
    if (*sleep_type == VIREO_ACPI_S5_TYPE) {
        stop_.request_stop({StopReason::PowerOff, 0, "acpi: guest entered S5 (soft off)"});
        return;
    }
    // Only \_S5 is in the DSDT; a guest asking for another state gets no
    // sleep and keeps running, as on hardware that lacks that state.
    uint64_t n = ignored_sleeps_.fetch_add(1, std::memory_order_relaxed);
    if (n < 4)
        log_warn("acpi: guest asked for sleep type {} (SLP_TYP); only S5 (type {}) is supported, ignored{}",
                 *sleep_type, VIREO_ACPI_S5_TYPE, n == 3 ? " (further ones counted, not logged)" : "");
}

bool AcpiPm::press_power_button() {
    bool raised;
    {
        std::lock_guard lock(mutex_);
        status_ |= kPwrBtnSts;
        update_sci();
        raised = enable_ & kPwrBtnSts;
    }
    log_info("acpi: power button pressed{}", raised ? "" : " (the guest has not enabled it: no SCI)");
    return raised;
}

bool AcpiPm::power_button_enabled() const {
    std::lock_guard lock(mutex_);
    return enable_ & kPwrBtnSts;
}

}  // namespace vireo
