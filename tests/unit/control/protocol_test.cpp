// parse_request(): every request's well-formed shape, and each way a line
// can be wrong getting its stable error code and the request's id back.
#include <gtest/gtest.h>

#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/control/protocol.h"

namespace vireo::control {
namespace {

using json = nlohmann::json;

Request ok(const std::string& line) {
    auto r = parse_request(line);
    EXPECT_TRUE(r) << line << " -> " << (r ? "" : r.error().error.message);
    return r ? *r : Request{};
}

ProtocolError bad(const std::string& line, ErrorCode code) {
    auto r = parse_request(line);
    EXPECT_FALSE(r) << line << " parsed";
    if (r) return {};
    EXPECT_EQ(to_string(r.error().error.code), to_string(code)) << line << " -> " << r.error().error.message;
    EXPECT_FALSE(r.error().error.message.empty());
    return r.error();
}

TEST(ControlProtocol, EveryRequestParses) {
    EXPECT_TRUE(std::holds_alternative<req::Info>(ok(R"({"id":1,"request":"info"})").body));
    EXPECT_TRUE(std::holds_alternative<req::List>(ok(R"({"id":1,"request":"list"})").body));
    for (const char* a : {"pause", "resume", "poweroff", "restart"}) {
        auto r = ok(fmt::format(R"({{"id":1,"request":"{}","guest":"web"}})", a));
        EXPECT_EQ(r.guest, "web");
        ASSERT_TRUE(std::holds_alternative<req::GuestAction>(r.body));
        EXPECT_EQ(action_name(std::get<req::GuestAction>(r.body).body), a);
    }
    auto sd = ok(R"({"id":1,"request":"shutdown","guest":"g","timeout_s":5})");
    EXPECT_EQ(std::get<action::Shutdown>(std::get<req::GuestAction>(sd.body).body).timeout, std::chrono::seconds(5));
    EXPECT_TRUE(std::holds_alternative<req::Vcpus>(ok(R"({"id":1,"request":"vcpus","guest":"g"})").body));
    auto pin = ok(R"({"id":1,"request":"pin","guest":"g","vcpu":1,"cpus":[3,1,1]})");
    auto& p = std::get<action::Pin>(std::get<req::GuestAction>(pin.body).body);
    EXPECT_EQ(p.vcpu, 1u);
    EXPECT_EQ(p.cpus, (std::vector<unsigned>{1, 3}));
    auto pin_text = ok(R"({"id":1,"request":"pin","guest":"g","vcpu":0,"cpus":"0-2,5"})");
    EXPECT_EQ(std::get<action::Pin>(std::get<req::GuestAction>(pin_text.body).body).cpus, (std::vector<unsigned>{0, 1, 2, 5}));
    auto unpin = ok(R"({"id":1,"request":"unpin","guest":"g"})");
    EXPECT_FALSE(std::get<action::Unpin>(std::get<req::GuestAction>(unpin.body).body).vcpu);
    auto b = ok(R"({"id":1,"request":"balloon","guest":"g"})");
    EXPECT_FALSE(std::get<req::Balloon>(b.body).target_bytes);
    EXPECT_EQ(*std::get<req::Balloon>(ok(R"({"id":1,"request":"balloon","guest":"g","target":"128M"})").body).target_bytes, 128ull << 20);
    EXPECT_EQ(*std::get<req::Balloon>(ok(R"({"id":1,"request":"balloon","guest":"g","target":4096})").body).target_bytes, 4096u);
    EXPECT_TRUE(std::holds_alternative<req::Disks>(ok(R"({"id":1,"request":"disks","guest":"g"})").body));
    EXPECT_TRUE(std::holds_alternative<req::Metrics>(ok(R"({"id":1,"request":"metrics"})").body));
    auto c = ok(R"({"id":1,"request":"controller","mode":"advise","limits":{"pin_interval_s":30}})");
    EXPECT_EQ(*std::get<req::Controller>(c.body).mode, ControllerMode::Advise);
    EXPECT_EQ(std::get<req::Controller>(c.body).limits.size(), 1u);
    auto cg = ok(R"({"id":1,"request":"controller","guest":"g","mode":"inherit","release":["pin"],"hold":["balloon"]})");
    ASSERT_TRUE(std::get<req::Controller>(cg.body).guest_mode.has_value());
    EXPECT_FALSE(std::get<req::Controller>(cg.body).guest_mode->has_value());
    EXPECT_EQ(std::get<req::Decisions>(ok(R"({"id":1,"request":"decisions","limit":5})").body).limit, 5u);
    EXPECT_EQ(std::get<req::Undo>(ok(R"({"id":1,"request":"undo","seq":9})").body).seq, 9u);
    auto ev = ok(R"({"id":1,"request":"events","since":3,"types":["state","action"]})");
    EXPECT_EQ(*std::get<req::Events>(ev.body).since, 3u);
    EXPECT_EQ(std::get<req::Events>(ev.body).types.size(), 2u);
    EXPECT_EQ(request_names().size(), 17u);
}

TEST(ControlProtocol, IdIsEchoedAsGiven) {
    EXPECT_EQ(ok(R"({"id":"abc","request":"info"})").id, json("abc"));
    EXPECT_EQ(ok(R"({"id":-4,"request":"info"})").id, json(-4));
    // Errors after the id was read carry it.
    EXPECT_EQ(bad(R"({"id":7,"request":"nope"})", ErrorCode::UnknownRequest).id, json(7));
    EXPECT_EQ(bad(R"({"id":"q","request":"pin","guest":"g","vcpu":"x","cpus":[1]})", ErrorCode::BadRequest).id, json("q"));
}

TEST(ControlProtocol, ReasonAndCrlf) {
    auto r = ok("{\"id\":1,\"request\":\"pause\",\"guest\":\"g\",\"reason\":\"maintenance\"}\r");
    EXPECT_EQ(r.reason, "maintenance");
}

TEST(ControlProtocol, ParseErrors) {
    EXPECT_TRUE(bad("{bad", ErrorCode::ParseError).id.is_null());
    bad("", ErrorCode::ParseError);
    bad("[1,2]", ErrorCode::BadRequest);
    bad("42", ErrorCode::BadRequest);
    bad(R"({"request":"info"})", ErrorCode::BadRequest);              // no id
    bad(R"({"id":{"a":1},"request":"info"})", ErrorCode::BadRequest);  // id of a bad type
    bad(R"({"id":1.5,"request":"info"})", ErrorCode::BadRequest);
    bad(R"({"id":1})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":7})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"teleport"})", ErrorCode::UnknownRequest);
    // Found by the fuzzer: a number too large for a double is a throw of
    // another kind (out_of_range.406) -- still the peer's bad input.
    bad(R"({"id":66666666666E6666666666666666660000000001492662673464448341,"request":"info"})", ErrorCode::ParseError);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":1E999,"cpus":[1]})", ErrorCode::ParseError);
    bad(std::string(R"({"id":1,"request":"info","pad":")") + std::string(70000, 'x') + "\"}", ErrorCode::TooLarge);
}

TEST(ControlProtocol, WrongFieldsAndTypes) {
    bad(R"({"id":1,"request":"info","guest":"g"})", ErrorCode::BadRequest);  // info takes no guest
    bad(R"({"id":1,"request":"list","verbose":true})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pause"})", ErrorCode::BadRequest);  // guest missing
    bad(R"({"id":1,"request":"pause","guest":3})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pause","guest":""})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","cpus":[1]})", ErrorCode::BadRequest);  // vcpu missing
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0})", ErrorCode::BadRequest);    // cpus missing
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":-1,"cpus":[1]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0.5,"cpus":[1]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0,"cpus":[]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0,"cpus":["a"]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0,"cpus":"3-1"})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"pin","guest":"g","vcpu":0,"cpus":[100000]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"balloon","guest":"g","target":"12Q"})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"balloon","guest":"g","target":-1})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"balloon","guest":"g","target":true})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"shutdown","guest":"g","timeout_s":0})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","mode":"sometimes"})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","mode":"inherit"})", ErrorCode::BadRequest);  // only per guest
    bad(R"({"id":1,"request":"controller","limits":{"speed":1}})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","limits":{"balloon_step_percent":101}})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","guest":"g","limits":{"pin_interval_s":1}})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","release":["pin"]})", ErrorCode::BadRequest);  // needs guest
    bad(R"({"id":1,"request":"controller","guest":"g","release":["cpu"]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"controller","guest":"g","release":["pin"],"hold":["pin"]})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"decisions","limit":0})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"undo"})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"undo","seq":0})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"events","types":"state"})", ErrorCode::BadRequest);
    bad(R"({"id":1,"request":"info","reason":5})", ErrorCode::BadRequest);
}

TEST(ControlProtocol, ResponseLines) {
    EXPECT_EQ(result_line(json(3), json{{"a", 1}}), R"({"id":3,"result":{"a":1}})");
    EXPECT_EQ(error_line(json("x"), {ErrorCode::UnknownGuest, "no guest named 'q'"}),
              R"({"error":{"code":"unknown_guest","message":"no guest named 'q'"},"id":"x"})");
    // Invalid UTF-8 in a message never makes an invalid line.
    auto line = error_line(json(nullptr), {ErrorCode::ParseError, std::string("bad \xff byte")});
    EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace vireo::control
