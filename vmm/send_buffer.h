// Non-blocking send of what is left in an output buffer, shared by the
// control socket and the metrics listener (both keep a string and a position).
#pragma once

#include <cstddef>
#include <string>

namespace vireo {

enum class SendProgress {
    all_sent,    // pos == out.size()
    would_block, // the socket is full: wait for EPOLLOUT
    broken,      // the peer went away or the send failed
};

// Sends out[pos..] on the non-blocking stream socket fd, advancing pos, until
// all is sent or the socket would block. Never raises SIGPIPE.
SendProgress send_pending(int fd, const std::string& out, size_t& pos);

}  // namespace vireo
