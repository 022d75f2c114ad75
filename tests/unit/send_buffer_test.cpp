// send_pending: sends what is left, stops when the socket is full, and says
// when the peer is gone (without SIGPIPE).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "vmm/send_buffer.h"

namespace vireo {
namespace {

struct Pair {
    int fd[2];
    Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0); }
    ~Pair() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
};

TEST(SendPending, SendsFromThePositionToTheEnd) {
    Pair p;
    std::string out = "skip:hello";
    size_t pos = 5;
    EXPECT_EQ(send_pending(p.fd[0], out, pos), SendProgress::all_sent);
    EXPECT_EQ(pos, out.size());
    char buf[16] = {};
    ASSERT_EQ(::read(p.fd[1], buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST(SendPending, StopsWhenTheSocketIsFullAndGoesOnLater) {
    Pair p;
    std::string out(4 << 20, 'x');  // more than a socket buffer holds
    size_t pos = 0;
    ASSERT_EQ(send_pending(p.fd[0], out, pos), SendProgress::would_block);
    EXPECT_GT(pos, 0u);
    EXPECT_LT(pos, out.size());
    size_t got = 0;
    std::string buf(1 << 16, '\0');
    while (pos < out.size()) {  // drain and resume until everything went out
        ssize_t n;
        while ((n = ::read(p.fd[1], buf.data(), buf.size())) > 0) got += size_t(n);
        SendProgress r = send_pending(p.fd[0], out, pos);
        ASSERT_NE(r, SendProgress::broken);
    }
    ssize_t n;
    while ((n = ::read(p.fd[1], buf.data(), buf.size())) > 0) got += size_t(n);
    EXPECT_EQ(got, out.size());
}

TEST(SendPending, ReportsAPeerThatIsGone) {
    Pair p;
    ::close(p.fd[1]);
    p.fd[1] = -1;
    std::string out = "nobody listens";
    size_t pos = 0;
    EXPECT_EQ(send_pending(p.fd[0], out, pos), SendProgress::broken);  // EPIPE, no SIGPIPE
    EXPECT_EQ(pos, 0u);
}

}  // namespace
}  // namespace vireo
