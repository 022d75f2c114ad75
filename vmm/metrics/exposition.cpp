#include "vmm/metrics/exposition.h"

#include <cmath>

#include <fmt/format.h>

#include "vmm/metrics/log2_hist.h"

namespace vireo {

std::string Exposition::escape_label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string Exposition::format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Whole numbers as integers (counters stay exact up to 2^53).
    if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) return fmt::format("{}", int64_t(v));
    return fmt::format("{}", v);
}

std::string Exposition::label_text(const Labels& labels, const std::string* le) {
    if (labels.empty() && !le) return {};
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : labels) {
        s += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, escape_label(v));
        first = false;
    }
    if (le) s += fmt::format("{}le=\"{}\"", first ? "" : ",", *le);
    return s + "}";
}

Exposition::Family& Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    auto it = families_.find(name);
    if (it != families_.end()) return it->second;
    order_.emplace_back(name);
    return families_.emplace(std::string(name), Family{std::string(type), std::string(help), {}}).first->second;
}

void Exposition::counter(std::string_view name, std::string_view help, const Labels& labels, double value) {
    family(name, "counter", help).samples += fmt::format("{}{} {}\n", name, label_text(labels), format_value(value));
}

void Exposition::gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
    family(name, "gauge", help).samples += fmt::format("{}{} {}\n", name, label_text(labels), format_value(value));
}

void Exposition::log2_histogram(std::string_view name, std::string_view help, const Labels& labels, const vireo_hist& hist,
                                double sum_seconds) {
    Family& f = family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (unsigned i = 0; i < VIREO_HIST_BUCKETS; ++i) {
        cumulative += hist.bucket[i];
        auto upper = log2_bucket_upper_ns(i);
        // Bucket i holds values below 2^i ns; `le` is that bound in seconds.
        std::string le = upper ? format_value(double(*upper) / 1e9) : std::string("+Inf");
        f.samples += fmt::format("{}_bucket{} {}\n", name, label_text(labels, &le), cumulative);
    }
    f.samples += fmt::format("{}_sum{} {}\n", name, label_text(labels), format_value(sum_seconds));
    // _count is the +Inf bucket, so the two always agree.
    f.samples += fmt::format("{}_count{} {}\n", name, label_text(labels), cumulative);
}

std::string Exposition::text() const {
    std::string out;
    for (const auto& name : order_) {
        const Family& f = families_.find(name)->second;
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
        out += f.samples;
    }
    return out;
}

}  // namespace vireo
