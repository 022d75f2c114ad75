#include "agent/scenarios.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "agent/features.h"

namespace vireo::agent {

namespace {

constexpr uint64_t GiB = 1ull << 30;

// splitmix64: small, fast, and the same numbers everywhere.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    double normal() {
        double u1 = std::max(uniform(), 1e-300), u2 = uniform();
        return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
    }
    double exponential(double mean) { return -mean * std::log(std::max(1.0 - uniform(), 1e-300)); }
    // Pareto with scale 1 and shape alpha: heavy-tailed sizes (>= 1).
    double pareto(double alpha) { return std::pow(std::max(1.0 - uniform(), 1e-12), -1.0 / alpha); }

private:
    uint64_t state_;
};

float clamp01(double v) { return float(std::clamp(v, 0.0, 1.0)); }

struct Kind {
    const char* prefix;
    GuestClass truth;
    double ram_gib;
    double demand_lo, demand_hi;
    double wakes;
    double memory;
};
// The archetypes the scenarios are built from.
constexpr Kind kWeb{"web", GuestClass::LatencySensitive, 2, 0.04, 0.12, 300, 0.35};
constexpr Kind kDb{"db", GuestClass::LatencySensitive, 8, 0.15, 0.30, 600, 0.60};
constexpr Kind kBatch{"batch", GuestClass::Batch, 4, 0.70, 0.95, 15, 0.50};
constexpr Kind kIdle{"idle", GuestClass::Unknown, 2, 0.005, 0.02, 5, 0.15};
constexpr Kind kMixed{"mixed", GuestClass::Unknown, 4, 0.30, 0.50, 100, 0.40};

// A guest whose vCPUs want `base` with noise and whose memory wanders
// around `memory`; the scenario then shapes the series.
struct Builder {
    Rng& rng;
    size_t ticks;

    SimGuest guest(const Kind& k, int number, bool tell_class) {
        SimGuest g;
        g.name = std::string(k.prefix) + std::to_string(number);
        g.ram_bytes = uint64_t(k.ram_gib * double(GiB));
        g.true_class = k.truth;
        g.configured_class = tell_class ? k.truth : GuestClass::Unknown;
        for (int v = 0; v < 2; ++v) {
            SimVcpu vc;
            double base = rng.uniform(k.demand_lo, k.demand_hi);
            for (size_t t = 0; t < ticks; ++t) {
                vc.demand.push_back(clamp01(base * (1 + 0.15 * rng.normal())));
                vc.wakes_per_s.push_back(float(k.wakes));
            }
            g.vcpus.push_back(std::move(vc));
        }
        double m = k.memory * rng.uniform(0.9, 1.1), wander = 0;
        for (size_t t = 0; t < ticks; ++t) {
            wander = 0.98 * wander + 0.003 * rng.normal();
            g.memory_used.push_back(clamp01(m + wander));
        }
        return g;
    }
};

// Autocorrelated, heavy-tailed demand around `base`: an AR(1) process in
// log space (coefficient phi, stationary sd sigma), times bursts that start
// with probability burst_rate per tick, last ~burst_len ticks (geometric)
// and multiply demand by a Pareto(alpha) factor.
struct HeavyDemand {
    double phi = 0.97, sigma = 0.35, burst_rate = 0.004, burst_len = 20, alpha = 1.5;
};

std::vector<float> heavy_series(Rng& rng, size_t ticks, double base, const HeavyDemand& h) {
    std::vector<float> out(ticks);
    double x = h.sigma * rng.normal(), burst = 1;
    size_t burst_left = 0;
    const double innovation = h.sigma * std::sqrt(1 - h.phi * h.phi);
    for (size_t t = 0; t < ticks; ++t) {
        x = h.phi * x + innovation * rng.normal();
        if (burst_left == 0 && rng.uniform() < h.burst_rate) {
            burst = rng.pareto(h.alpha);
            burst_left = size_t(1 + rng.exponential(h.burst_len));
        }
        double m = burst_left > 0 ? burst : 1.0;
        if (burst_left > 0) --burst_left;
        out[t] = clamp01(base * std::exp(x - h.sigma * h.sigma / 2) * m);
    }
    return out;
}

// A guest of `vcpus` vCPUs with heavy-tailed demand; a latency-sensitive
// one wakes in proportion to its demand (requests), and its memory wanders
// with Pareto jumps that decay (half-life ~2 min).
SimGuest heavy_guest(Rng& rng, size_t ticks, const Kind& k, int number, bool tell_class, unsigned vcpus, const HeavyDemand& h) {
    SimGuest g;
    g.name = std::string(k.prefix) + std::to_string(number);
    g.ram_bytes = uint64_t(k.ram_gib * double(GiB));
    g.true_class = k.truth;
    g.configured_class = tell_class ? k.truth : GuestClass::Unknown;
    for (unsigned v = 0; v < vcpus; ++v) {
        SimVcpu vc;
        double base = rng.uniform(k.demand_lo, k.demand_hi);
        vc.demand = heavy_series(rng, ticks, base, h);
        for (size_t t = 0; t < ticks; ++t)
            vc.wakes_per_s.push_back(float(k.truth == GuestClass::LatencySensitive ? k.wakes * std::max(0.2, vc.demand[t] / base)
                                                                                   : k.wakes));
        g.vcpus.push_back(std::move(vc));
    }
    double m = k.memory * rng.uniform(0.85, 1.15), wander = 0, jump = 0;
    const double jump_decay = std::exp2(-1.0 / 120);
    for (size_t t = 0; t < ticks; ++t) {
        wander = 0.995 * wander + 0.004 * rng.normal();
        jump *= jump_decay;
        if (rng.uniform() < 0.002) jump += 0.04 * rng.pareto(1.8);
        g.memory_used.push_back(clamp01(m + wander + jump));
    }
    return g;
}

void finish(Scenario& s) {
    double ram = 0;
    for (const auto& g : s.guests) ram += double(g.ram_bytes);
    // Overcommitted just enough that the host runs short unless guests give
    // memory back: the case ballooning is for.
    if (s.host_ram_bytes == 0) s.host_ram_bytes = uint64_t(ram * 1.1);
    if (s.background.empty()) s.background.assign(s.host_cpus, std::vector<float>(s.ticks, 0.0f));
}

std::vector<SimGuest> standard_guests(Builder& b) {
    return {b.guest(kWeb, 1, true),    b.guest(kWeb, 2, false),   b.guest(kDb, 1, true),
            b.guest(kBatch, 1, true),  b.guest(kBatch, 2, false), b.guest(kBatch, 3, false),
            b.guest(kIdle, 1, false),  b.guest(kMixed, 1, false)};
}

Scenario steady(Builder& b) {
    Scenario s;
    s.guests = standard_guests(b);
    return s;
}

Scenario diurnal(Builder& b) {
    Scenario s;
    s.guests = standard_guests(b);
    constexpr double period_s = 1800;
    for (auto& g : s.guests) {
        double phase = b.rng.uniform(-0.1, 0.1);
        bool day_worker = g.true_class != GuestClass::Batch;
        for (size_t t = 0; t < b.ticks; ++t) {
            double day = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * (double(t) / period_s + phase));
            double level = day_worker ? day : 1 - day;
            for (auto& v : g.vcpus) v.demand[t] = clamp01(v.demand[t] * (day_worker ? 0.3 + 1.4 * level : 0.3 + 0.7 * level));
            g.memory_used[t] = clamp01(g.memory_used[t] * (0.7 + 0.6 * level));
        }
    }
    return s;
}

Scenario bursty(Builder& b) {
    Scenario s;
    s.guests = standard_guests(b);
    for (auto& g : s.guests) {
        if (g.true_class == GuestClass::LatencySensitive) {
            // Request bursts: a few times the usual demand for seconds.
            for (auto& v : g.vcpus) {
                size_t t = size_t(b.rng.exponential(90));
                while (t < b.ticks) {
                    size_t len = size_t(b.rng.uniform(5, 30));
                    for (size_t k = t; k < std::min(b.ticks, t + len); ++k) {
                        v.demand[k] = clamp01(v.demand[k] * 4);
                        v.wakes_per_s[k] *= 2;
                    }
                    t += len + size_t(b.rng.exponential(90));
                }
            }
        } else if (g.true_class == GuestClass::Batch) {
            // Jobs: on for minutes, off for minutes; a job's memory ramps up
            // as it starts and is released when it ends.
            double base_memory = 0.25;
            bool on = b.rng.uniform() < 0.5;
            size_t t = 0;
            while (t < b.ticks) {
                size_t len = size_t(std::max(30.0, b.rng.exponential(on ? 180 : 120)));
                double job_memory = b.rng.uniform(0.20, 0.35), ramp = b.rng.uniform(30, 90);
                for (size_t k = t; k < std::min(b.ticks, t + len); ++k) {
                    for (auto& v : g.vcpus) v.demand[k] = on ? clamp01(0.9 + 0.05 * b.rng.normal()) : 0.03f;
                    double into = double(k - t);
                    g.memory_used[k] = clamp01(base_memory + (on ? job_memory * std::min(1.0, into / ramp) : 0.0) +
                                               0.005 * b.rng.normal());
                }
                t += len;
                on = !on;
            }
        }
    }
    return s;
}

Scenario noisy(Builder& b) {
    Scenario s;
    s.guests = {b.guest(kWeb, 1, true), b.guest(kWeb, 2, false), b.guest(kWeb, 3, true), b.guest(kDb, 1, true),
                b.guest(kMixed, 1, false), b.guest(kMixed, 2, false)};
    SimGuest noisy = b.guest(kIdle, 1, false);
    noisy.name = "noisy1";
    noisy.true_class = GuestClass::Batch;
    size_t start = std::min(b.ticks, size_t(600));
    for (auto& v : noisy.vcpus)
        for (size_t t = start; t < b.ticks; ++t) {
            v.demand[t] = clamp01(0.98 + 0.02 * b.rng.normal());
            v.wakes_per_s[t] = 5;
        }
    s.guests.push_back(std::move(noisy));
    s.background.assign(s.host_cpus, std::vector<float>(b.ticks, 0.0f));
    for (size_t t = 0; t < b.ticks; ++t) s.background[0][t] = clamp01(0.5 + 0.05 * b.rng.normal());
    return s;
}

Scenario leak(Builder& b) {
    Scenario s;
    s.guests = standard_guests(b);
    // mixed1 leaks from 25 % to 90 % of its RAM; batch2's cache grows in steps.
    for (auto& g : s.guests) {
        if (g.name == "mixed1")
            for (size_t t = 0; t < b.ticks; ++t) g.memory_used[t] = clamp01(0.25 + 0.65 * double(t) / double(b.ticks));
        if (g.name == "batch2")
            for (size_t t = 0; t < b.ticks; ++t) g.memory_used[t] = clamp01(0.3 + 0.1 * double(t / 600) + 0.003 * b.rng.normal());
    }
    return s;
}

Scenario heavy(Builder& b) {
    Scenario s;
    HeavyDemand ls, batch{0.99, 0.25, 0.002, 60, 2.0};
    Rng& r = b.rng;
    s.guests = {heavy_guest(r, b.ticks, kWeb, 1, true, 2, ls),    heavy_guest(r, b.ticks, kWeb, 2, false, 1, ls),
                heavy_guest(r, b.ticks, kDb, 1, true, 4, ls),     heavy_guest(r, b.ticks, kBatch, 1, true, 8, batch),
                heavy_guest(r, b.ticks, kBatch, 2, false, 4, batch), heavy_guest(r, b.ticks, kMixed, 1, false, 3, ls),
                heavy_guest(r, b.ticks, kIdle, 1, false, 1, ls)};
    // Eight- and four-vCPU batch guests at the archetype's demand would want
    // more than the host: scale them to ~0.35 and ~0.5 of a CPU per vCPU.
    for (auto& g : s.guests)
        if (g.true_class == GuestClass::Batch)
            for (auto& v : g.vcpus)
                for (auto& d : v.demand) d = clamp01(d * (g.vcpus.size() >= 8 ? 0.42 : 0.6));
    return s;
}

Scenario peaks(Builder& b) {
    Scenario s;
    HeavyDemand ls;
    Rng& r = b.rng;
    s.guests = {heavy_guest(r, b.ticks, kWeb, 1, true, 2, ls), heavy_guest(r, b.ticks, kWeb, 2, false, 2, ls),
                heavy_guest(r, b.ticks, kDb, 1, true, 2, ls), b.guest(kBatch, 1, true), b.guest(kBatch, 2, false),
                b.guest(kBatch, 3, false), b.guest(kMixed, 1, false)};
    // Cron-style peaks: every batch guest runs its job at the same minute
    // of every 10 (jitter of seconds), for 2-4 minutes, its memory ramping
    // up over the job and released at its end; idle in between.
    constexpr size_t period = 600;
    size_t offset = size_t(r.uniform(60, 300));
    for (auto& g : s.guests) {
        if (g.true_class != GuestClass::Batch) continue;
        double base_memory = r.uniform(0.15, 0.25), job_memory = r.uniform(0.35, 0.55);
        size_t len = size_t(r.uniform(120, 240)), jitter = size_t(r.uniform(0, 20));
        for (size_t t = 0; t < b.ticks; ++t) {
            size_t into = (t + period - offset - jitter) % period;  // offset + jitter < period
            bool on = t >= offset + jitter && into < len;
            for (auto& v : g.vcpus) v.demand[t] = on ? clamp01(0.95 + 0.03 * r.normal()) : clamp01(0.02 + 0.01 * r.normal());
            g.memory_used[t] = clamp01(base_memory + (on ? job_memory * std::min(1.0, double(into) / (0.5 * double(len))) : 0.0) +
                                       0.004 * r.normal());
        }
    }
    return s;
}

// Page cache and spikes (shares of RAM per tick): hot cache around `hot`
// wandering slowly; sub-second spikes at spike_rate per tick, Pareto-sized.
void add_cache_and_spikes(Rng& r, size_t ticks, SimGuest& g, double hot, double spike_rate) {
    double wander = 0;
    g.memory_cache.resize(ticks);
    g.memory_spike.assign(ticks, 0.0f);
    for (size_t t = 0; t < ticks; ++t) {
        wander = 0.995 * wander + 0.004 * r.normal();
        g.memory_cache[t] = clamp01(std::min(hot + wander, 0.95 - g.memory_used[t]));
        if (r.uniform() < spike_rate) g.memory_spike[t] = clamp01(std::min(0.03 * r.pareto(1.5), 0.25));
    }
}

Scenario cache(Builder& b) {
    Scenario s;
    Rng& r = b.rng;
    HeavyDemand ls;
    constexpr Kind kFile{"fs", GuestClass::LatencySensitive, 4, 0.05, 0.15, 400, 0.25};
    s.guests = {heavy_guest(r, b.ticks, kFile, 1, true, 2, ls), heavy_guest(r, b.ticks, kFile, 2, false, 2, ls),
                heavy_guest(r, b.ticks, kDb, 1, true, 4, ls),   b.guest(kBatch, 1, true),
                b.guest(kMixed, 1, false),                      heavy_guest(r, b.ticks, kWeb, 1, false, 1, ls)};
    s.guests[1].deflate_on_oom = true;
    add_cache_and_spikes(r, b.ticks, s.guests[0], r.uniform(0.2, 0.35), 1.0 / 60);
    add_cache_and_spikes(r, b.ticks, s.guests[1], r.uniform(0.2, 0.35), 1.0 / 60);
    add_cache_and_spikes(r, b.ticks, s.guests[2], r.uniform(0.15, 0.25), 1.0 / 120);
    add_cache_and_spikes(r, b.ticks, s.guests[4], r.uniform(0.05, 0.15), 1.0 / 300);
    add_cache_and_spikes(r, b.ticks, s.guests[5], r.uniform(0.05, 0.1), 1.0 / 30);
    // ETL: OOM bursts -- allocations jump by 30-45 % of RAM within a tick,
    // hold for seconds, and are freed, every ~15 minutes.
    SimGuest etl = b.guest(kBatch, 2, false);
    etl.name = "etl1";
    for (size_t t = size_t(r.exponential(900)); t < b.ticks; t += size_t(60 + r.exponential(900))) {
        double burst = r.uniform(0.30, 0.45);
        size_t len = size_t(r.uniform(3, 10));
        for (size_t k = t; k < std::min(b.ticks, t + len); ++k) etl.memory_used[k] = clamp01(etl.memory_used[k] + burst);
    }
    s.guests.push_back(std::move(etl));
    return s;
}

Scenario churn(Builder& b) {
    Scenario s;
    Rng& r = b.rng;
    HeavyDemand ls, batch{0.99, 0.25, 0.002, 60, 2.0};
    s.guests = {heavy_guest(r, b.ticks, kWeb, 1, true, 2, ls), heavy_guest(r, b.ticks, kDb, 1, true, 2, ls),
                heavy_guest(r, b.ticks, kBatch, 1, true, 2, batch), heavy_guest(r, b.ticks, kMixed, 1, false, 2, ls)};
    double base_ram = 0;
    for (const auto& g : s.guests) base_ram += double(g.ram_bytes);
    // Arrivals: Poisson, one every ~3 min, each staying ~15 min; 1-4 vCPUs.
    const Kind* kinds[] = {&kWeb, &kBatch, &kMixed, &kIdle};
    int number = 10;
    double arriving_ram = 0;
    for (double t = r.exponential(180); t < double(b.ticks); t += r.exponential(180)) {
        const Kind& k = *kinds[size_t(r.uniform() * 4) % 4];
        SimGuest g = heavy_guest(r, b.ticks, k, number++, false, unsigned(1 + r.uniform() * 4) , k.truth == GuestClass::Batch ? batch : ls);
        if (k.truth == GuestClass::Batch)
            for (auto& v : g.vcpus)
                for (auto& d : v.demand) d = clamp01(d * 0.6);
        g.arrive_tick = size_t(t);
        g.run_ticks = size_t(std::max(120.0, r.exponential(900)));
        arriving_ram += double(g.ram_bytes) * double(std::min(g.run_ticks, b.ticks - g.arrive_tick)) / double(b.ticks);
        s.guests.push_back(std::move(g));
    }
    // 1.75x: the RAM asked for on average (base + arrivals' time share) over the host's.
    s.host_ram_bytes = uint64_t((base_ram + arriving_ram) / 1.75);
    s.host_ram_bytes = std::max<uint64_t>(s.host_ram_bytes, uint64_t(base_ram * 1.05));
    return s;
}

}  // namespace

const std::vector<std::string_view>& tuning_family_names() {
    static const std::vector<std::string_view> names = {"steady", "diurnal", "bursty", "noisy", "leak"};
    return names;
}

const std::vector<std::string_view>& held_out_family_names() {
    static const std::vector<std::string_view> names = {"heavy", "peaks", "cache", "churn"};
    return names;
}

const std::vector<std::string_view>& scenario_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> all = tuning_family_names();
        for (auto n : held_out_family_names()) all.push_back(n);
        return all;
    }();
    return names;
}

std::expected<Scenario, std::string> make_scenario(std::string_view name, uint64_t seed, size_t ticks) {
    if (ticks == 0) return std::unexpected(std::string("a scenario needs at least one tick"));
    // Each scenario draws from its own stream: adding one never changes another.
    uint64_t salt = 0;
    for (char c : name) salt = salt * 131 + uint8_t(c);
    Rng rng(seed ^ (salt << 20));
    Builder b{rng, ticks};
    Scenario s;
    if (name == "steady") s = steady(b);
    else if (name == "diurnal") s = diurnal(b);
    else if (name == "bursty") s = bursty(b);
    else if (name == "noisy") s = noisy(b);
    else if (name == "leak") s = leak(b);
    else if (name == "heavy") s = heavy(b);
    else if (name == "peaks") s = peaks(b);
    else if (name == "cache") s = cache(b);
    else if (name == "churn") s = churn(b);
    else {
        std::string known;
        for (auto n : scenario_names()) known += (known.empty() ? "" : ", ") + std::string(n);
        return std::unexpected("unknown scenario '" + std::string(name) + "' (known: " + known + ")");
    }
    s.name = std::string(name);
    s.ticks = ticks;
    finish(s);
    return s;
}

std::expected<Scenario, std::string> scenario_from_trace(const std::vector<Snapshot>& trace, std::string name) {
    if (trace.size() < 2) return std::unexpected(std::string("a trace needs at least two snapshots to give rates"));
    const Snapshot& first = trace.front();
    if (first.host_cpus.empty()) return std::unexpected(std::string("the trace's first snapshot lists no host CPUs"));
    Scenario s;
    s.name = std::move(name);
    s.host_cpus = unsigned(first.host_cpus.size());
    s.ticks = trace.size() - 1;
    s.tick_s = double(trace.back().timestamp_ns - first.timestamp_ns) * 1e-9 / double(s.ticks);
    if (!(s.tick_s > 0)) return std::unexpected(std::string("the trace's timestamps do not grow"));
    s.background.assign(s.host_cpus, std::vector<float>(s.ticks, 0.0f));
    for (const auto& g : first.guests) {
        SimGuest sg;
        sg.name = g.name;
        sg.ram_bytes = g.ram_bytes;
        sg.configured_class = sg.true_class = g.configured_class;
        sg.balloon = g.balloon.has_value();
        sg.vcpus.assign(g.vcpus.size(), SimVcpu{std::vector<float>(s.ticks, 0.0f), std::vector<float>(s.ticks, 0.0f)});
        sg.memory_used.assign(s.ticks, 0.0f);
        s.guests.push_back(std::move(sg));
    }
    FeatureExtractor fx;
    fx.update(first);
    std::vector<bool> has_memory(s.guests.size(), false);
    std::vector<float> last_memory(s.guests.size(), 0.0f);
    for (size_t t = 0; t < s.ticks; ++t) {
        Features f = fx.update(trace[t + 1]);
        if (f.host.cpus.size() == s.host_cpus)
            for (size_t c = 0; c < s.host_cpus; ++c) s.background[c][t] = float(f.host.other_load[c]);
        for (size_t i = 0; i < s.guests.size(); ++i) {
            SimGuest& sg = s.guests[i];
            auto it = std::find_if(f.guests.begin(), f.guests.end(), [&](const auto& gf) { return gf.sample->name == sg.name; });
            if (it == f.guests.end()) {  // stopped: wants nothing, keeps its memory figure
                sg.memory_used[t] = last_memory[i];
                continue;
            }
            if (it->used_bytes && sg.ram_bytes) {
                last_memory[i] = clamp01(double(*it->used_bytes) / double(sg.ram_bytes));
                has_memory[i] = true;
            }
            sg.memory_used[t] = last_memory[i];
            if (it->guest_class != GuestClass::Unknown && sg.true_class == GuestClass::Unknown) sg.true_class = it->guest_class;
            for (size_t v = 0; v < std::min(sg.vcpus.size(), it->vcpus.size()); ++v) {
                sg.vcpus[v].demand[t] = clamp01(it->vcpus[v].demand);
                sg.vcpus[v].wakes_per_s[t] = float(it->vcpus[v].wakes_per_s);
            }
        }
    }
    for (size_t i = 0; i < s.guests.size(); ++i)
        if (!has_memory[i]) s.guests[i].balloon = false;
    s.host_ram_bytes = first.host_mem_total_bytes;
    if (s.host_ram_bytes == 0) finish(s);
    return s;
}

}  // namespace vireo::agent
