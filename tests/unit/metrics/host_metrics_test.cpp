// The metrics page of a fake host (tests/unit/fake_host.h): process-wide
// series, one set per guest, and the endpoints' counters only where the
// endpoint exists. No KVM: these run on every host.
#include "vmm/metrics/host_metrics.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_host.h"

namespace vireo {
namespace {

using vireo::test::FakeHost;

bool has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(HostMetrics, ProcessAndControllerSeries) {
    FakeHost host({"web"}, ControllerMode::Advise);
    std::string t = render_metrics(host);
    EXPECT_TRUE(has(t, "vireo_info{version=")) << t;
    EXPECT_TRUE(has(t, "vireo_controller_mode{mode=\"advise\"} 1")) << t;
    EXPECT_TRUE(has(t, "vireo_controller_mode{mode=\"auto\"} 0")) << t;
    EXPECT_TRUE(has(t, "guest=\"web\"")) << t;
}

TEST(HostMetrics, EndpointCountersOnlyWhereTheEndpointExists) {
    FakeHost host({"web"});
    std::string none = render_metrics(host);
    EXPECT_FALSE(has(none, "vireo_control_requests_total")) << none;
    EXPECT_FALSE(has(none, "vireo_metrics_scrapes_total")) << none;

    host.endpoints.control = EndpointStats::Control{.path = "x.sock", .clients = 2, .requests = 7, .errors = {{"unknown_guest", 3}}};
    host.endpoints.metrics = EndpointStats::Metrics{.address = "127.0.0.1:1", .scrapes = 4, .refused = 1};
    std::string t = render_metrics(host);
    EXPECT_TRUE(has(t, "vireo_control_clients 2")) << t;
    EXPECT_TRUE(has(t, "vireo_control_requests_total 7")) << t;
    EXPECT_TRUE(has(t, "vireo_control_errors_total{code=\"unknown_guest\"} 3")) << t;
    // This scrape counts itself: it is served after the page is rendered.
    EXPECT_TRUE(has(t, "vireo_metrics_scrapes_total 5")) << t;
    EXPECT_TRUE(has(t, "vireo_metrics_refused_total 1")) << t;
}

}  // namespace
}  // namespace vireo
