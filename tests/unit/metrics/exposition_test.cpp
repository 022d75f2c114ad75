// The Prometheus writer's output passes the exposition-format checker, and
// the checker (promtool's stand-in) catches what a scraper would reject.
#include <gtest/gtest.h>

#include "tests/common/prom_check.h"
#include "vmm/metrics/exposition.h"
#include "vmm/metrics/log2_hist.h"

namespace vireo {
namespace {

using test::check_prometheus_text;

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

TEST(Exposition, WriterOutputIsValid) {
    Exposition x;
    vireo_hist h{};
    h.bucket[0] = 1;
    h.bucket[10] = 5;
    h.bucket[31] = 2;
    x.counter("vireo_actions_total", "actions", {{"source", "admin"}, {"kind", "pin"}}, 3);
    x.gauge("vireo_guest_state", "state", {{"guest", "a\"b\\c\nd"}, {"state", "running"}}, 1);
    x.log2_histogram("vireo_vcpu_runqueue_wait_seconds", "wait", {{"guest", "a"}, {"vcpu", "0"}}, h, 0.25);
    x.counter("vireo_actions_total", "actions", {{"source", "controller"}, {"kind", "pin"}}, 1);  // regrouped
    x.log2_histogram("vireo_vcpu_runqueue_wait_seconds", "wait", {{"guest", "a"}, {"vcpu", "1"}}, vireo_hist{}, 0);
    std::vector<test::PromSample> samples;
    std::string text = x.text();
    auto problems = check_prometheus_text(text, &samples);
    EXPECT_TRUE(problems.empty()) << join(problems) << text;
    // HELP/TYPE once per family; the family's samples together.
    EXPECT_EQ(text.find("# TYPE vireo_actions_total counter"), text.rfind("# TYPE vireo_actions_total counter"));
    bool saw_escaped = false, saw_inf = false;
    for (const auto& s : samples) {
        for (const auto& [k, v] : s.labels) {
            if (k == "guest" && v == "a\"b\\c\nd") saw_escaped = true;
            if (k == "le" && v == "+Inf" && s.value == 8) saw_inf = true;
        }
    }
    EXPECT_TRUE(saw_escaped);
    EXPECT_TRUE(saw_inf);
    EXPECT_NE(text.find("vireo_vcpu_runqueue_wait_seconds_count{guest=\"a\",vcpu=\"0\"} 8"), std::string::npos);
    EXPECT_NE(text.find("le=\"1.024e-06\"} 6"), std::string::npos) << text;  // bucket 10 is below 2^10 ns
}

TEST(Exposition, CheckerRejectsBrokenText) {
    auto bad = [](const std::string& t) { return !check_prometheus_text(t).empty(); };
    EXPECT_FALSE(bad("# HELP a x\n# TYPE a counter\na 1\n"));
    EXPECT_TRUE(bad("a 1"));                                  // no final newline
    EXPECT_TRUE(bad("1a 1\n"));                               // metric name
    EXPECT_TRUE(bad("a{b=c} 1\n"));                           // unquoted label value
    EXPECT_TRUE(bad("a{b=\"\\x\"} 1\n"));                     // bad escape
    EXPECT_TRUE(bad("a one\n"));                              // value
    EXPECT_TRUE(bad("# TYPE a counter\n# TYPE a counter\na 1\n"));
    EXPECT_TRUE(bad("# TYPE a counter\na -1\n"));             // negative counter
    EXPECT_TRUE(bad("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n"));  // family split
    EXPECT_TRUE(bad("a 1\na 2\n"));                           // duplicate sample
    EXPECT_TRUE(bad("# TYPE a gauge\na 1\n# HELP a late\n"));  // HELP after samples
    const std::string h = "# TYPE h histogram\n";
    EXPECT_FALSE(bad(h + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"));
    EXPECT_TRUE(bad(h + "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"));  // not cumulative
    EXPECT_TRUE(bad(h + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n"));                           // no +Inf
    EXPECT_TRUE(bad(h + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 5\n"));  // count differs
    EXPECT_TRUE(bad(h + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n"));
}

TEST(Log2Hist, QuantilesAndDeltas) {
    vireo_hist h{};
    EXPECT_FALSE(hist_quantile_ns(h, 0.5));
    h.bucket[3] = 50;   // [4, 8) ns
    h.bucket[20] = 49;  // [0.5, 1) ms
    h.bucket[31] = 1;   // >= 1.07 s
    EXPECT_EQ(hist_total(h), 100u);
    EXPECT_EQ(*hist_quantile_ns(h, 0.5), 8u);
    EXPECT_EQ(*hist_quantile_ns(h, 0.99), 1u << 20);
    EXPECT_EQ(*hist_quantile_ns(h, 1.0), UINT64_MAX);
    vireo_hist before = h;
    h.bucket[3] += 10;
    auto d = hist_delta(h, before);
    EXPECT_EQ(hist_total(d), 10u);
    EXPECT_EQ(*hist_quantile_ns(d, 0.99), 8u);
    EXPECT_EQ(*log2_bucket_upper_ns(0), 0u);
    EXPECT_FALSE(log2_bucket_upper_ns(31));
    // Interpolated: 100 values in [4, 8) -> p50 at the middle, p99 near the top.
    vireo_hist e{};
    e.bucket[3] = 100;
    EXPECT_EQ(*hist_quantile_interpolated_ns(e, 0.5), 6u);
    EXPECT_EQ(*hist_quantile_interpolated_ns(e, 0.99), 7u);
    vireo_hist f{};
    f.bucket[0] = 50;  // zeros
    f.bucket[21] = 50;  // [1 Mi, 2 Mi)
    EXPECT_EQ(*hist_quantile_interpolated_ns(f, 0.5), 0u);
    EXPECT_EQ(*hist_quantile_interpolated_ns(f, 0.75), (1u << 20) + (1u << 19));
    EXPECT_FALSE(hist_quantile_interpolated_ns(vireo_hist{}, 0.5));
}

}  // namespace
}  // namespace vireo
