// The request handler over a fake host (tests/unit/fake_host.h): queries
// answered from the host's state, changes handed to the actuator, errors
// with their codes. No KVM and no socket: these run on every host.
#include "vmm/control/request_handler.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_host.h"

namespace vireo::control {
namespace {

using json = nlohmann::json;
using vireo::test::FakeHost;

const PeerCred kPeer{.pid = 42, .uid = 0, .gid = 0};

class RequestHandlerTest : public ::testing::Test {
protected:
    std::expected<json, Error> ask(const std::string& line) {
        auto r = parse_request(line);
        EXPECT_TRUE(r.has_value()) << line << ": " << (r ? "" : r.error().error.message);
        if (!r) return std::unexpected(r.error().error);
        return handler_.handle(*r, kPeer, 1);
    }

    FakeHost host_{{"web", "batch"}};
    RequestHandler handler_{host_};
};

TEST_F(RequestHandlerTest, InfoReportsTheHostAndItsEndpoints) {
    host_.endpoints.control = EndpointStats::Control{.path = "/run/vireo/fake.sock"};
    host_.endpoints.metrics = EndpointStats::Metrics{.address = "127.0.0.1:9100"};
    auto j = ask(R"({"id":1,"request":"info"})");
    ASSERT_TRUE(j.has_value()) << j.error().message;
    EXPECT_EQ((*j)["name"], "fake");
    EXPECT_EQ((*j)["guests"], 2);
    EXPECT_EQ((*j)["control"], "/run/vireo/fake.sock");
    EXPECT_EQ((*j)["metrics"], "http://127.0.0.1:9100/metrics");
    EXPECT_EQ((*j)["controller"], "off");
    EXPECT_EQ((*j)["host_cpus"]["allowed"], "0-1");
}

TEST_F(RequestHandlerTest, InfoWithoutEndpointsSaysNull) {
    auto j = ask(R"({"id":1,"request":"info"})");
    ASSERT_TRUE(j.has_value());
    EXPECT_TRUE((*j)["control"].is_null());
    EXPECT_TRUE((*j)["metrics"].is_null());
}

TEST_F(RequestHandlerTest, ListNamesEveryGuestWithItsState) {
    auto j = ask(R"({"id":1,"request":"list"})");
    ASSERT_TRUE(j.has_value()) << j.error().message;
    ASSERT_EQ((*j)["guests"].size(), 2u);
    EXPECT_EQ((*j)["guests"][0]["name"], "web");
    EXPECT_EQ((*j)["guests"][0]["state"], "stopped");
    EXPECT_EQ((*j)["guests"][1]["name"], "batch");
}

TEST_F(RequestHandlerTest, AnUnknownGuestIsAnErrorAndChangesNothing) {
    auto j = ask(R"({"id":1,"request":"pause","guest":"nope"})");
    ASSERT_FALSE(j.has_value());
    EXPECT_EQ(j.error().code, ErrorCode::UnknownGuest);
    EXPECT_NE(j.error().message.find("nope"), std::string::npos);
    EXPECT_TRUE(host_.calls.empty());
    EXPECT_EQ(host_.actuator().decisions().next_seq(), 1u);
}

TEST_F(RequestHandlerTest, ControllerModeGoesThroughTheActuatorAndIsLogged) {
    auto set = ask(R"({"id":1,"request":"controller","mode":"advise","reason":"try it"})");
    ASSERT_TRUE(set.has_value()) << set.error().message;
    EXPECT_EQ(host_.actuator().controller_mode(), ControllerMode::Advise);

    auto q = ask(R"({"id":2,"request":"controller"})");
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ((*q)["mode"], "advise");

    auto d = ask(R"({"id":3,"request":"decisions"})");
    ASSERT_TRUE(d.has_value()) << d.error().message;
    ASSERT_FALSE(d->dump().empty());
    EXPECT_NE(d->dump().find("try it"), std::string::npos) << d->dump();
    EXPECT_NE(d->dump().find("uid 0 pid 42"), std::string::npos) << d->dump();
}

TEST_F(RequestHandlerTest, ALifecycleRequestTheOwnerRefusesIsReportedWithItsCode) {
    auto j = ask(R"({"id":1,"request":"poweroff","guest":"web"})");
    ASSERT_FALSE(j.has_value());
    EXPECT_EQ(j.error().code, ErrorCode::Conflict);
    EXPECT_EQ(host_.calls, (std::vector<std::string>{"poweroff web"}));
}

TEST_F(RequestHandlerTest, AControllerLimitWithinBoundsIsAppliedThroughTheActuator) {
    auto j = ask(R"({"id":1,"request":"controller","limits":{"balloon_step_percent":7}})");
    ASSERT_TRUE(j.has_value()) << j.error().message;
    EXPECT_EQ(host_.actuator().controller_limits().balloon_step_percent, 7u);
}

}  // namespace
}  // namespace vireo::control
