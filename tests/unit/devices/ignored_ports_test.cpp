#include "vmm/devices/ignored_ports.h"

#include <gtest/gtest.h>

#include "tests/unit/fakes.h"

namespace vireo {
namespace {

using test::read8;
using test::read_n;
using test::write8;

TEST(IgnoredPorts, ReadsAllOnesAtEveryWidth) {
    IgnoredPorts dev("post-port");
    EXPECT_EQ(read8(dev, 0), 0xff);
    EXPECT_EQ(read_n(dev, 0, 2), 0xffffu);
    EXPECT_EQ(read_n(dev, 0, 4), 0xffffffffu);
}

TEST(IgnoredPorts, WritesChangeNothing) {
    IgnoredPorts dev("post-port");
    write8(dev, 0, 0x00);
    write8(dev, 0, 0x5a);
    EXPECT_EQ(read8(dev, 0), 0xff);
    EXPECT_EQ(dev.name(), "post-port");
}

}  // namespace
}  // namespace vireo
