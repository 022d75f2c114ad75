// From a control-socket line to a response: parse_request(), then either a
// query answered from the host's state or an Action handed to
// the actuator's apply() (vmm/actuator/) -- the same door the controller and the supervisor use.
// Also keeps the `events` subscriptions of connected clients.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmm/control/control_server.h"
#include "vmm/control/protocol.h"
#include "vmm/event_bus.h"

namespace vireo {
class Guest;
class HostView;
}

namespace vireo::control {

class RequestHandler {
public:
    explicit RequestHandler(HostView& host) : host_(host) {}
    ~RequestHandler();
    void attach(ControlServer& server) { server_ = &server; }

    void on_line(ControlServer::ClientId client, const PeerCred& peer, std::string_view line);
    void on_close(ControlServer::ClientId client);

    // Answers one parsed request (the socket-independent part; `client` is
    // only used by `events`).
    std::expected<nlohmann::json, Error> handle(const Request& r, const PeerCred& peer, ControlServer::ClientId client);

    uint64_t dropped_subscribers() const { return dropped_subscribers_; }
    size_t subscriptions() const { return subs_.size(); }
    uint64_t requests() const { return requests_; }
    // Errors answered, by code: vireo_control_errors_total.
    const std::unordered_map<std::string, uint64_t>& errors() const { return errors_; }

private:
    struct Subscription {
        EventBus::SubscriberId id = 0;
        std::vector<std::string> types;
        std::string guest;
        pid_t pid = 0;
    };
    using Reply = std::expected<nlohmann::json, Error>;
    // The requests, one each (`g` is the request's guest, null when it named none).
    Reply info();
    Reply list();
    Reply guest_action(const Request& r, const PeerCred& peer, Guest* g, const req::GuestAction& ga);
    Reply vcpus(Guest* g);
    Reply balloon(const Request& r, const PeerCred& peer, Guest* g, const req::Balloon& b);
    Reply disks(Guest* g);
    Reply metrics(Guest* g);
    Reply controller(const Request& r, const PeerCred& peer, Guest* g, const req::Controller& c);
    Reply decisions(Guest* g, const req::Decisions& d);
    Reply undo(const Request& r, const PeerCred& peer, const req::Undo& u);
    Reply act(const Request& r, const PeerCred& peer, Action action);
    std::expected<nlohmann::json, Error> subscribe(const Request& r, const PeerCred& peer, ControlServer::ClientId client);
    void unsubscribe(ControlServer::ClientId client);

    HostView& host_;
    ControlServer* server_ = nullptr;
    std::unordered_map<ControlServer::ClientId, Subscription> subs_;
    uint64_t dropped_subscribers_ = 0;
    uint64_t requests_ = 0;
    std::unordered_map<std::string, uint64_t> errors_;
};

}  // namespace vireo::control
