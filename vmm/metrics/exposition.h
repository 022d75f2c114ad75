// Prometheus text exposition format 0.0.4, written: metric families in the
// order they are first used, each with its HELP and TYPE and all its
// samples together (the format requires that), label values escaped, and
// vireo's log2 histograms as Prometheus histograms (cumulative _bucket with
// `le` in seconds, _sum, _count).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vireo/telemetry.h"

namespace vireo {

class Exposition {
public:
    using Labels = std::vector<std::pair<std::string, std::string>>;

    void counter(std::string_view name, std::string_view help, const Labels& labels, double value);
    void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
    // `sum_seconds`: the total the histogram's observations add up to.
    void log2_histogram(std::string_view name, std::string_view help, const Labels& labels, const vireo_hist& hist,
                        double sum_seconds);
    std::string text() const;

    static std::string escape_label(std::string_view value);
    static std::string format_value(double v);

private:
    struct Family {
        std::string type, help;
        std::string samples;
    };
    Family& family(std::string_view name, std::string_view type, std::string_view help);
    static std::string label_text(const Labels& labels, const std::string* le = nullptr);

    std::vector<std::string> order_;
    std::map<std::string, Family, std::less<>> families_;
};

}  // namespace vireo
