#include "agent/simulator.h"

#include <algorithm>
#include <cmath>

namespace vireo::agent {

namespace {

constexpr double kGiB = double(1ull << 30);

uint64_t splitmix(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
double uniform(uint64_t& state) { return double(splitmix(state) >> 11) * 0x1.0p-53; }

// Queueing delay per unit of work, by the others' use of the CPU: M/M/1's
// rho / (1 - rho), capped; scaled down because CFS lets a waking task
// preempt a CPU hog soon (wake-up preemption) instead of queueing FIFO.
double queueing(double others) { return others <= 0 ? 0.0 : others / (1.0 - std::min(others, 0.9)); }
constexpr double kQueueingScale = 0.2;

// The max-min fair share level of one CPU among these demands.
double fair_level(std::vector<double> wants) {
    std::sort(wants.begin(), wants.end());
    double left = 1.0;
    for (size_t i = 0; i < wants.size(); ++i) {
        double share = left / double(wants.size() - i);
        if (wants[i] > share) return share;
        left -= wants[i];
    }
    return 1.0;  // everyone got all they wanted
}

}  // namespace

Simulator::Simulator(const Scenario& scenario, SimOptions options)
    : scenario_(scenario), options_(options), rng_state_(options.seed * 0x2545F4914F6CDD1Dull + 7) {
    guests_.resize(scenario_.guests.size());
    for (size_t i = 0; i < guests_.size(); ++i) guests_[i].vcpus.resize(scenario_.guests[i].vcpus.size());
    cpu_busy_ns_.assign(scenario_.host_cpus, 0.0);
    for (const auto& g : scenario_.guests) {
        auto& per_vcpu = mean_demand_.emplace_back();
        for (const auto& v : g.vcpus) {
            double sum = 0;
            for (float d : v.demand) sum += d;
            per_vcpu.push_back(v.demand.empty() ? 0.0 : sum / double(v.demand.size()));
        }
    }
    for (const auto& g : scenario_.guests)
        if (g.arrive_tick < scenario_.ticks) {
            size_t left = scenario_.ticks - g.arrive_tick;
            asked_ticks_ += double(g.run_ticks ? std::min(g.run_ticks, left) : left);
        }
    admit_and_retire();
}

void Simulator::admit_and_retire() {
    double resident = 0;
    for (size_t i = 0; i < guests_.size(); ++i) {
        GuestState& st = guests_[i];
        if (st.running && tick_ >= st.stop_tick) st.running = false;
        if (st.running) resident += double(scenario_.guests[i].ram_bytes) - st.actual;
    }
    // First come, first served: a guest that does not fit holds the queue.
    double host = double(scenario_.host_ram_bytes);
    for (size_t i = 0; i < guests_.size(); ++i) {
        const SimGuest& spec = scenario_.guests[i];
        GuestState& st = guests_[i];
        if (st.admitted || spec.arrive_tick > tick_) continue;
        size_t stop = spec.run_ticks ? spec.arrive_tick + spec.run_ticks : scenario_.ticks;
        if (tick_ >= stop) {  // its time passed while it waited: it never ran
            st.admitted = true;
            continue;
        }
        if (host > 0 && host - resident < double(spec.ram_bytes)) break;
        std::vector<VcpuState> vcpus(spec.vcpus.size());
        st = GuestState{};
        st.vcpus = std::move(vcpus);
        st.running = st.admitted = true;
        st.stop_tick = stop;
        resident += double(spec.ram_bytes);
    }
    if (host > 0) host_available_fraction_ = std::max(0.0, 1.0 - resident / host);
}

std::optional<double> Simulator::working_set_bytes(const std::string& guest) const {
    size_t t = std::min(tick_, scenario_.ticks ? scenario_.ticks - 1 : 0);
    for (size_t i = 0; i < guests_.size(); ++i) {
        const SimGuest& spec = scenario_.guests[i];
        if (!guests_[i].running || spec.name != guest) continue;
        double share = spec.memory_used[t] + (spec.memory_cache.empty() ? 0.0 : spec.memory_cache[t]);
        return share * double(spec.ram_bytes);
    }
    return std::nullopt;
}

std::optional<unsigned> Simulator::pinned_cpu(size_t guest, size_t vcpu) const {
    const auto& pin = guests_[guest].vcpus[vcpu].pin;
    if (pin && pin->size() == 1) return pin->front();
    return std::nullopt;
}

Snapshot Simulator::snapshot() const {
    Snapshot s;
    s.timestamp_ns = uint64_t(std::llround((double(tick_) + 1) * scenario_.tick_s * 1e9));
    s.mode = options_.mode;
    s.limits = options_.limits;
    for (unsigned c = 0; c < scenario_.host_cpus; ++c) s.host_cpus.push_back({c, uint64_t(cpu_busy_ns_[c])});
    s.host_mem_total_bytes = scenario_.host_ram_bytes;
    s.host_mem_available_bytes = uint64_t(host_available_fraction_ * double(scenario_.host_ram_bytes));
    double free = host_available_fraction_;
    s.pressure.memory_some_avg10 = free < 0.05 ? (0.05 - free) / 0.05 * 40 : 0.0;
    s.pressure.memory_full_avg10 = s.pressure.memory_some_avg10 / 4;
    size_t t = std::min(tick_, scenario_.ticks ? scenario_.ticks - 1 : 0);
    for (size_t i = 0; i < guests_.size(); ++i) {
        const SimGuest& spec = scenario_.guests[i];
        const GuestState& st = guests_[i];
        if (!st.running) continue;
        GuestSample g;
        g.name = spec.name;
        g.ram_bytes = spec.ram_bytes;
        g.configured_class = spec.configured_class;
        if (spec.balloon) {
            BalloonSample b;
            b.target_bytes = st.target;
            b.actual_bytes = uint64_t(st.actual);
            b.deflate_on_oom_events = st.oom_deflates;
            double ram = double(spec.ram_bytes), used = spec.memory_used.empty() ? 0.0 : spec.memory_used[t] * ram;
            double limit = ram - st.actual, available = std::max(0.0, limit - used);
            double free = spec.memory_cache.empty() ? available : std::min(available, 0.03 * limit);
            b.stats.total_memory = uint64_t(limit);
            b.stats.available_memory = uint64_t(available);
            b.stats.free_memory = uint64_t(free);
            if (!spec.memory_cache.empty()) b.stats.disk_caches = uint64_t(available - free);
            b.stats.major_faults = uint64_t(st.major_faults);
            b.stats.minor_faults = uint64_t(st.minor_faults);
            b.stats.swap_in = uint64_t(st.swap_in);
            b.stats.swap_out = uint64_t(st.swap_out);
            g.balloon = b;
        }
        for (size_t v = 0; v < st.vcpus.size(); ++v) {
            const VcpuState& vs = st.vcpus[v];
            VcpuSample vc;
            vc.index = unsigned(v);
            vc.tid = int32_t(1000 + i * 64 + v);
            vc.pinned_cpus = vs.pin;
            vc.in_kvm_run_ns = uint64_t(vs.in_kvm_run_ns);
            vc.runq_wait_ns = uint64_t(vs.runq_wait_ns);
            vc.runq_waits = uint64_t(vs.runq_waits);
            vc.halt_wait_ns = uint64_t(vs.halt_wait_ns);
            vc.exits = uint64_t(vs.exits);
            g.vcpus.push_back(std::move(vc));
        }
        s.guests.push_back(std::move(g));
    }
    return s;
}

void Simulator::submit(const Action& action) { pending_.push_back({tick_ + options_.action_delay_ticks, action}); }

void Simulator::apply(const Action& a) {
    auto it = std::find_if(scenario_.guests.begin(), scenario_.guests.end(),
                           [&](const SimGuest& g) { return g.name == a.guest && guests_[size_t(&g - scenario_.guests.data())].running; });
    if (it == scenario_.guests.end()) {
        bool known = std::any_of(scenario_.guests.begin(), scenario_.guests.end(), [&](const SimGuest& g) { return g.name == a.guest; });
        ++(known ? metrics_.actions_for_departed : metrics_.refused_actions);  // one that left meanwhile is no limit crossed
        return;
    }
    size_t gi = size_t(it - scenario_.guests.begin());
    GuestState& st = guests_[gi];
    const ControllerLimits& lim = options_.limits;
    double now = now_s();
    // The limits are the actuator's own checks (vireo/controller_limits.h).
    if (auto* b = std::get_if<action::BalloonTarget>(&a.body)) {
        auto since = st.balloon_changed ? std::optional(now - st.last_balloon_change_s) : std::nullopt;
        if (!it->balloon || balloon_limit_hit(lim, it->ram_bytes, st.target, b->bytes, since)) {
            ++metrics_.refused_actions;
            return;
        }
        st.target = b->bytes;
        st.balloon_changed = true;
        st.last_balloon_change_s = now;
        ++metrics_.balloon_actions;
    } else if (auto* p = std::get_if<action::Pin>(&a.body)) {
        if (p->vcpu >= st.vcpus.size() || p->cpus.empty() ||
            std::any_of(p->cpus.begin(), p->cpus.end(), [&](unsigned c) { return c >= scenario_.host_cpus; }) ||
            pin_limit_hit(lim, p->vcpu, now - st.vcpus[p->vcpu].last_pin_s)) {
            ++metrics_.refused_actions;
            return;
        }
        st.vcpus[p->vcpu].pin = p->cpus;
        st.vcpus[p->vcpu].last_pin_s = now;
        ++metrics_.pin_actions;
    } else if (auto* u = std::get_if<action::Unpin>(&a.body)) {
        for (size_t v = 0; v < st.vcpus.size(); ++v)
            if (!u->vcpu || *u->vcpu == v) st.vcpus[v].pin.reset();
        ++metrics_.pin_actions;
    } else {
        ++metrics_.refused_actions;
    }
}

void Simulator::step() {
    if (done()) return;
    admit_and_retire();
    for (size_t i = 0; i < guests_.size(); ++i) {
        if (!guests_[i].admitted && scenario_.guests[i].arrive_tick <= tick_) metrics_.admission_wait_s += scenario_.tick_s;
        served_ticks_ += guests_[i].running;
    }
    while (!pending_.empty() && pending_.front().due_tick <= tick_) {
        apply(pending_.front().action);
        pending_.pop_front();
    }
    run_vcpus(place_vcpus());
    count_busy_siblings_pinned_together();
    step_memory();
    ++tick_;
}

double Simulator::background_load(unsigned cpu) const {
    const auto& bg = scenario_.background;
    return cpu < bg.size() && tick_ < bg[cpu].size() ? bg[cpu][tick_] : 0.0;
}

// Where each vCPU runs this tick: pinned ones first, then the kernel places
// the others in a random order.
std::vector<Simulator::Placed> Simulator::place_vcpus() {
    const size_t t = tick_;
    const unsigned ncpu = scenario_.host_cpus;
    std::vector<double> load(ncpu, 0.0);
    for (unsigned c = 0; c < ncpu; ++c) load[c] = background_load(c);
    std::vector<Placed> placed;
    std::vector<std::pair<size_t, size_t>> unpinned;
    auto least_loaded = [&](const std::vector<unsigned>& among) {
        unsigned best = among.front();
        for (unsigned c : among)
            if (load[c] < load[best]) best = c;
        return best;
    };
    for (size_t i = 0; i < guests_.size(); ++i) {
        if (!guests_[i].running) continue;
        for (size_t v = 0; v < guests_[i].vcpus.size(); ++v) {
            const auto& pin = guests_[i].vcpus[v].pin;
            double d = scenario_.guests[i].vcpus[v].demand[t];
            if (!pin) {
                unpinned.push_back({i, v});
                continue;
            }
            // Pinned to several CPUs: the kernel places it among them, as well as it places unpinned vCPUs.
            unsigned cpu = pin->size() == 1 || uniform(rng_state_) < options_.kernel_smart_placement
                               ? least_loaded(*pin)
                               : (*pin)[size_t(splitmix(rng_state_) % pin->size())];
            load[cpu] += d;
            placed.push_back({i, v, cpu, d});
        }
    }
    for (size_t k = unpinned.size(); k > 1; --k) std::swap(unpinned[k - 1], unpinned[size_t(splitmix(rng_state_) % k)]);
    std::vector<unsigned> all(ncpu);
    for (unsigned c = 0; c < ncpu; ++c) all[c] = c;
    for (auto [i, v] : unpinned) {
        double d = scenario_.guests[i].vcpus[v].demand[t];
        unsigned cpu = uniform(rng_state_) < options_.kernel_smart_placement ? least_loaded(all)
                                                                               : unsigned(splitmix(rng_state_) % ncpu);
        load[cpu] += d;
        placed.push_back({i, v, cpu, d});
    }

    return placed;
}

// What each placed vCPU got (max-min fair share of each CPU, as CFS gives
// equal weights), and what it waited.
void Simulator::run_vcpus(const std::vector<Placed>& placed) {
    const size_t t = tick_;
    const double dt = scenario_.tick_s, dt_ns = dt * 1e9;
    const unsigned ncpu = scenario_.host_cpus;
    std::vector<std::vector<size_t>> on_cpu(ncpu);
    for (size_t k = 0; k < placed.size(); ++k) on_cpu[placed[k].cpu].push_back(k);
    std::vector<double> run_of(placed.size(), 0.0), ran(ncpu, 0.0), bg_ran(ncpu, 0.0);
    for (unsigned c = 0; c < ncpu; ++c) {
        double bg = background_load(c);
        // Water-filling: everyone gets min(demand, level), the level set so the CPU is full.
        std::vector<double> wants;
        for (size_t k : on_cpu[c]) wants.push_back(placed[k].demand);
        wants.push_back(bg);
        double level = fair_level(wants);
        for (size_t k : on_cpu[c]) {
            run_of[k] = std::min(placed[k].demand, level);
            ran[c] += run_of[k];
        }
        bg_ran[c] = std::min(bg, level);
    }
    for (size_t k = 0; k < placed.size(); ++k) {
        const Placed& p = placed[k];
        double run = run_of[k];
        double others = ran[p.cpu] + bg_ran[p.cpu] - run;
        double wait = std::min(1.0 - run, (p.demand - run) + kQueueingScale * run * queueing(others));
        double halt = std::max(0.0, 1.0 - run - wait);
        const SimGuest& spec = scenario_.guests[p.guest];
        double wakes = spec.vcpus[p.vcpu].wakes_per_s[t];
        VcpuState& vs = guests_[p.guest].vcpus[p.vcpu];
        vs.in_kvm_run_ns += dt_ns;
        vs.runq_wait_ns += wait * dt_ns;
        vs.halt_wait_ns += halt * dt_ns;
        vs.runq_waits += wakes * dt;
        vs.exits += wakes * dt;
        metrics_.wait_vcpu_s += wait * dt;
        if (spec.true_class == GuestClass::LatencySensitive && wakes > 0) ls_waits_us_.push_back(float(wait * 1e6 / wakes));
        if (spec.true_class == GuestClass::Batch) {
            batch_ran_ += run * dt;
            batch_wanted_ += p.demand * dt;
        }
    }
    for (unsigned c = 0; c < ncpu; ++c) cpu_busy_ns_[c] += std::min(1.0, ran[c] + bg_ran[c]) * dt_ns;
}

void Simulator::count_busy_siblings_pinned_together() {
    for (size_t i = 0; i < guests_.size(); ++i) {
        if (!guests_[i].running) continue;
        std::vector<unsigned> busy_pins;
        for (size_t v = 0; v < guests_[i].vcpus.size(); ++v)
            if (mean_demand_[i][v] >= 0.2)
                if (auto c = pinned_cpu(i, v)) busy_pins.push_back(*c);
        std::sort(busy_pins.begin(), busy_pins.end());
        if (std::adjacent_find(busy_pins.begin(), busy_pins.end()) != busy_pins.end()) ++metrics_.busy_siblings_pinned_together;
    }
}

// Balloons move toward their targets; what guests lack is swapped, what they
// have spare is idle; the host's free share follows.
void Simulator::step_memory() {
    const size_t t = tick_;
    const double dt = scenario_.tick_s;
    double resident = 0;
    for (size_t i = 0; i < guests_.size(); ++i) {
        const SimGuest& spec = scenario_.guests[i];
        GuestState& st = guests_[i];
        if (!st.running) continue;
        double ram = double(spec.ram_bytes), used = spec.memory_used[t] * ram;
        double hot = spec.memory_cache.empty() ? 0.0 : spec.memory_cache[t] * ram;
        double spike = spec.memory_spike.empty() ? 0.0 : spec.memory_spike[t] * ram;
        if (spec.balloon) {
            double target = double(st.target);
            if (st.actual < target)  // the guest cannot give pages it uses
                st.actual = std::min({target, st.actual + options_.inflate_bytes_per_s * dt, std::max(st.actual, ram - used)});
            else if (st.actual > target)
                st.actual = std::max(target, st.actual - options_.deflate_bytes_per_s * dt);
        }
        double limit = ram - st.actual, short_by = used + spike - limit;
        if (short_by > 0 && spec.deflate_on_oom) {
            st.actual = std::max(0.0, st.actual - short_by);
            ++st.oom_deflates;
            ++metrics_.oom_deflates;
            limit = ram - st.actual;
            short_by = used - limit;
        }
        double need = used + hot + spike;
        if (spec.balloon) {
            // The oracle: the most this guest needs (spikes included) over the window ahead.
            size_t end = std::min(scenario_.ticks, t + size_t(kOracleWindowS / dt) + 1);
            double peak = 0;
            for (size_t k = t; k < end; ++k)
                peak = std::max(peak, double(spec.memory_used[k]) + (spec.memory_cache.empty() ? 0.0 : spec.memory_cache[k]) +
                                          (spec.memory_spike.empty() ? 0.0 : spec.memory_spike[k]));
            oracle_limit_s_ += std::min(1.0, peak) * ram * dt;
            ram_s_ += ram * dt;
            limit_s_ += limit * dt;
            slack_s_ += (limit - used - hot) * dt;
            ++metrics_.guest_ticks;
            metrics_.under_provisioned_ticks += need > limit;
        }
        if (short_by > 0) {
            ++metrics_.failed_allocations;
            metrics_.swapped_gib_s += short_by / kGiB * dt;
            if (short_by > st.swapped) st.swap_out += short_by - st.swapped;
            st.swap_in += std::min(short_by, 0.05 * ram) * dt;
            st.swapped = short_by;
            st.major_faults += 5000 * dt;
        } else {
            if (st.swapped > 0) st.swap_in += st.swapped;  // brought back in when memory returned
            st.swapped = 0;
            // Hot page cache squeezed out refaults: 5 % of its pages a second.
            st.major_faults += std::max(0.0, need - limit) / 4096 * 0.05 * dt;
            if (limit - need < 0.02 * ram) st.major_faults += 100 * dt;  // little left for cache: refaults
            metrics_.idle_gib_s += std::max(0.0, limit - need) / kGiB * dt;
        }
        st.minor_faults += 1000 * dt;
        resident += limit;
    }
    if (scenario_.host_ram_bytes) {
        host_available_fraction_ = std::max(0.0, 1.0 - resident / double(scenario_.host_ram_bytes));
        if (resident > double(scenario_.host_ram_bytes)) ++metrics_.failed_allocations, ++metrics_.host_short_ticks;
    }
}

SimMetrics Simulator::metrics() const {
    SimMetrics m = metrics_;
    if (!ls_waits_us_.empty()) {
        std::vector<float> w = ls_waits_us_;
        size_t k = std::min(w.size() - 1, size_t(std::ceil(0.99 * double(w.size()))) - 1);
        std::nth_element(w.begin(), w.begin() + long(k), w.end());
        m.ls_p99_wait_us = w[k];
        double sum = 0;
        for (float x : ls_waits_us_) sum += x;
        m.ls_mean_wait_us = sum / double(ls_waits_us_.size());
    }
    m.batch_throughput = batch_wanted_ > 0 ? batch_ran_ / batch_wanted_ : 1.0;
    m.host_memory_saved = ram_s_ > 0 ? 1.0 - limit_s_ / ram_s_ : 0.0;
    m.oracle_memory_saved = ram_s_ > 0 ? 1.0 - oracle_limit_s_ / ram_s_ : 0.0;
    m.slack = limit_s_ > 0 ? slack_s_ / limit_s_ : 0.0;
    m.served = asked_ticks_ > 0 ? served_ticks_ / asked_ticks_ : 1.0;
    return m;
}

}  // namespace vireo::agent
