#include "vmm/send_buffer.h"

#include <sys/socket.h>

#include <cerrno>

namespace vireo {

SendProgress send_pending(int fd, const std::string& out, size_t& pos) {
    while (pos < out.size()) {
        ssize_t n = ::send(fd, out.data() + pos, out.size() - pos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            pos += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SendProgress::would_block;
        return SendProgress::broken;
    }
    return SendProgress::all_sent;
}

}  // namespace vireo
