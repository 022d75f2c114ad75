// A control-socket client: connect, send a request, read lines. Used by
// vireoctl and the tests; blocking with timeouts, one connection each.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vmm/kvm/unique_fd.h"

namespace vireo::control {

class ControlClient {
public:
    static std::expected<ControlClient, std::string> connect(const std::string& path);

    // Sends `request` with a fresh "id" and returns the response object
    // ({"id":..,"result":..} or {"id":..,"error":..}); event lines that
    // arrive meanwhile are skipped.
    std::expected<nlohmann::json, std::string> call(nlohmann::json request,
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
    std::expected<void, std::string> send_line(std::string_view line);
    // One line without its newline; unexpected on timeout ("timeout"), EOF ("closed") or error.
    std::expected<std::string, std::string> read_line(std::chrono::milliseconds timeout);
    int fd() const { return fd_.get(); }

private:
    explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
    std::string buffer_;
    uint64_t next_id_ = 1;
};

}  // namespace vireo::control
