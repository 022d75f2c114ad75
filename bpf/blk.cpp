// The blk probe's loader part (its programs: blk.bpf.c).
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "bpf/probe_maps.h"
#include "bpf/probe_parts.h"

namespace vireo::probe_parts {

using namespace probe_maps;

void size_blk(vireo_bpf& s, bool runs, uint32_t inflight) {
    bpf_map__set_max_entries(s.maps.blk_inflight, runs ? std::max(1u, inflight) : 1);
}

void zero_blk(vireo_bpf& s) { zero_array(s.maps.blk_stats); }

std::expected<void, std::string> add_blk_device(vireo_bpf& s, unsigned device, uint64_t notify_gpa,
                                                std::optional<uint32_t> gsi) {
    uint32_t dev = device;
    auto fail = [&](const char* what) {
        return std::unexpected(
            fmt::format("probes: registering blk device {} ({}): {}", device, what, std::strerror(errno)));
    };
    if (bpf_map__update_elem(s.maps.blk_notify, &notify_gpa, sizeof notify_gpa, &dev, sizeof dev, BPF_ANY) != 0)
        return fail("notify address");
    // The device state is large (its completion ring); only has_irq is set.
    auto state = std::make_unique<vireo_blk_device>();
    std::memset(state.get(), 0, sizeof *state);
    state->has_irq = gsi.has_value();
    if (bpf_map__update_elem(s.maps.blk_devices, &dev, sizeof dev, state.get(), sizeof *state, BPF_ANY) != 0)
        return fail("state");
    if (gsi) {
        uint32_t g = *gsi;
        if (bpf_map__update_elem(s.maps.blk_irq, &g, sizeof g, &dev, sizeof dev, BPF_ANY) != 0) return fail("GSI");
    }
    return {};
}

void read_blk(const vireo_bpf& s, unsigned device, vireo_blk_telemetry& out) {
    vireo_blk_stats st;
    if (!read_percpu(s.maps.blk_stats, device, st)) return;
    out.device = device;
    out.sources |= VIREO_TELEMETRY_BLK;
    out.submitted += st.submitted;
    out.completed += st.completed;
    out.failed += st.failed;
    out.no_notify += st.no_notify;
    out.interrupted += st.interrupted;
    out.uninterrupted += st.uninterrupted;
    out.lost += st.lost;
    out.notify_to_submit_ns += st.stage_ns[VIREO_BLK_STAGE_NOTIFY];
    out.submit_to_complete_ns += st.stage_ns[VIREO_BLK_STAGE_IO];
    out.complete_to_irq_ns += st.stage_ns[VIREO_BLK_STAGE_IRQ];
    add_hist(out.notify_to_submit_hist, st.hist[VIREO_BLK_STAGE_NOTIFY]);
    add_hist(out.submit_to_complete_hist, st.hist[VIREO_BLK_STAGE_IO]);
    add_hist(out.complete_to_irq_hist, st.hist[VIREO_BLK_STAGE_IRQ]);
}

}  // namespace vireo::probe_parts
