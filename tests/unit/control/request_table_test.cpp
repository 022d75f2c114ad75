// The request table against the server's parser: every request vireoctl
// can build from the table is one the server accepts, field by field, and
// vireoctl's own checks of what was typed give one-line errors.
#include "vmm/control/request_table.h"

#include <gtest/gtest.h>

#include "vmm/control/protocol.h"

namespace vireo::control {
namespace {

using Values = std::map<std::string, std::vector<std::string>>;

// A value each field accepts, as typed on vireoctl's command line.
std::vector<std::string> sample(const RequestField& f) {
    static const std::map<std::string_view, std::vector<std::string>> samples = {
        {"timeout_s", {"1.5"}}, {"vcpu", {"0"}},     {"cpus", {"0-1"}},      {"target", {"128M"}},
        {"mode", {"advise"}},   {"limits", {"balloon_step_percent=5", "pin_interval_s=30"}},
        {"release", {"pin"}},   {"hold", {"balloon"}}, {"limit", {"10"}},    {"seq", {"1"}},
        {"since", {"0"}},       {"types", {"state", "fault"}}};
    auto it = samples.find(f.key);
    return it == samples.end() ? std::vector<std::string>{} : it->second;
}

TEST(RequestTable, EveryRequestVireoctlBuildsTheServerAccepts) {
    for (const auto& spec : request_specs()) {
        ASSERT_FALSE(spec.help.empty()) << spec.name;
        Values required;
        for (const auto& f : spec.fields) {
            ASSERT_FALSE(sample(f).empty()) << spec.name << ": no sample for field " << f.key;
            if (f.required) required[std::string(f.key)] = sample(f);
        }
        // The required fields alone, then each optional one on top.
        std::vector<std::pair<Values, std::string>> cases{{required, "required only"}};
        for (const auto& f : spec.fields)
            if (!f.required) {
                Values v = required;
                v[std::string(f.key)] = sample(f);
                cases.emplace_back(v, std::string(f.key));
            }
        for (const auto& [values, what] : cases) {
            // Release and hold are per guest; limits are process-wide.
            bool per_guest = values.contains("release") || values.contains("hold");
            std::string guest = spec.guest == GuestArg::Required || (spec.guest == GuestArg::Optional && per_guest) ? "web" : "";
            auto r = build_request(spec, guest, values);
            ASSERT_TRUE(r.has_value()) << spec.name << " (" << what << "): " << r.error();
            (*r)["id"] = 1;
            auto parsed = parse_request(r->dump());
            ASSERT_TRUE(parsed.has_value()) << spec.name << " (" << what << "): " << r->dump() << ": "
                                            << parsed.error().error.message;
            EXPECT_EQ(parsed->name, spec.name);
            EXPECT_EQ(parsed->guest, guest);
        }
    }
}

TEST(RequestTable, TheServerKnowsExactlyTheTablesRequests) {
    std::vector<std::string_view> names;
    for (const auto& s : request_specs()) names.push_back(s.name);
    EXPECT_EQ(request_names(), names);
    EXPECT_EQ(find_request_spec("nope"), nullptr);
    ASSERT_NE(find_request_spec("pin"), nullptr);
    EXPECT_EQ(find_request_spec("pin")->guest, GuestArg::Required);
}

TEST(RequestTable, TypedValuesBecomeTheirWireForm) {
    auto r = build_request(*find_request_spec("shutdown"), "web", {{"timeout_s", {"1.2"}}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["timeout_s"], 2);  // rounded up to a whole second
    r = build_request(*find_request_spec("controller"), "", {{"limits", {"balloon_floor_mib=128"}}, {"mode", {"auto"}}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["limits"]["balloon_floor_mib"], 128);
    EXPECT_EQ((*r)["mode"], "auto");
    EXPECT_FALSE(r->contains("guest"));
    r = build_request(*find_request_spec("events"), "", {{"types", {"state", "stop"}}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["types"], nlohmann::json({"state", "stop"}));
}

TEST(RequestTable, BadValuesAreOneLineErrorsNamingTheField) {
    struct Bad {
        const char* request;
        Values values;
        const char* error;
    } cases[] = {
        {"pin", {{"vcpu", {"x"}}, {"cpus", {"1"}}}, "pin: vcpu: 'x' is not a whole number"},
        {"pin", {{"vcpu", {"-1"}}, {"cpus", {"1"}}}, "pin: vcpu: '-1' is not a whole number"},
        {"pin", {{"cpus", {"1"}}}, "pin: vcpu is missing"},
        {"shutdown", {{"timeout_s", {"soon"}}}, "shutdown: timeout_s: 'soon' is not a number of seconds"},
        {"controller", {{"limits", {"balloon_step_percent"}}}, "controller: limits: 'balloon_step_percent': want NAME=VALUE"},
        {"controller", {{"limits", {"pin_interval_s=ten"}}}, "controller: limits: 'pin_interval_s=ten': 'ten' is not a whole number"},
        {"undo", {{"seq", {""}}}, "undo: seq: '' is not a whole number"},
    };
    for (const auto& c : cases) {
        auto r = build_request(*find_request_spec(c.request), "web", c.values);
        ASSERT_FALSE(r.has_value()) << c.error;
        EXPECT_EQ(r.error(), c.error);
    }
}

}  // namespace
}  // namespace vireo::control
