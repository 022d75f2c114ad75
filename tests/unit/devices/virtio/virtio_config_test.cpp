// --disk and --balloon values: what is accepted, and a clear error naming
// the option for everything that is not.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vmm/cli.h"
#include "vmm/devices/virtio/virtio_config.h"

namespace vireo {
namespace {

TEST(DiskSpec, PathAndOptions) {
    auto d = parse_disk_spec("disk.img");
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ(d->path, "disk.img");
    EXPECT_FALSE(d->read_only);
    EXPECT_FALSE(d->direct);
    EXPECT_EQ(d->queues, 1u);
    EXPECT_EQ(d->queue_size, 256u);
    EXPECT_EQ(d->poll_us, 0u);
    d = parse_disk_spec("/x/y.raw,ro,direct,queues=4,queue-size=64,serial=abc-1,poll=500");
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ(d->path, "/x/y.raw");
    EXPECT_TRUE(d->read_only);
    EXPECT_TRUE(d->direct);
    EXPECT_EQ(d->queues, 4u);
    EXPECT_EQ(d->queue_size, 64u);
    EXPECT_EQ(d->serial, "abc-1");
    EXPECT_EQ(d->poll_us, 500u);
}

TEST(DiskSpec, Errors) {
    for (const char* bad : {"", ",ro", "d,bogus", "d,ro=1", "d,queues=0", "d,queues=17", "d,queues=x",
                            "d,queue-size=100", "d,queue-size=1", "d,queue-size=2048", "d,queue-size=", "d,,ro",
                            "d,serial=", "d,serial=123456789012345678901", "d,queues=-1", "d,queues=2x", "d,poll=x",
                            "d,poll=1000000", "d,poll"}) {
        auto d = parse_disk_spec(bad);
        ASSERT_FALSE(d) << bad;
        EXPECT_EQ(d.error().rfind("--disk ", 0), 0u) << d.error();
        EXPECT_EQ(d.error().find('\n'), std::string::npos);
    }
    EXPECT_NE(parse_disk_spec("d,bogus").error().find("unknown option 'bogus'"), std::string::npos);
    EXPECT_NE(parse_disk_spec("d,queue-size=100").error().find("power of two"), std::string::npos);
}

TEST(BalloonSpec, Options) {
    auto b = parse_balloon_spec("");
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->deflate_on_oom);
    EXPECT_EQ(b->stats_seconds, 0u);
    b = parse_balloon_spec("deflate-on-oom,stats=5,reporting");
    ASSERT_TRUE(b) << b.error();
    EXPECT_TRUE(b->deflate_on_oom);
    EXPECT_EQ(b->stats_seconds, 5u);
    EXPECT_TRUE(b->reporting);
    b = parse_balloon_spec("target-at=1.5:256,target-at=3:0");
    ASSERT_TRUE(b) << b.error();
    ASSERT_EQ(b->target_at.size(), 2u);
    EXPECT_DOUBLE_EQ(b->target_at[0].seconds, 1.5);
    EXPECT_EQ(b->target_at[0].mib, 256u);
    EXPECT_FALSE(b->target_at[0].after_reached);
    b = parse_balloon_spec("target-at=0:256,target-after=3:0");
    ASSERT_TRUE(b) << b.error();
    ASSERT_EQ(b->target_at.size(), 2u);
    EXPECT_TRUE(b->target_at[1].after_reached);
    EXPECT_DOUBLE_EQ(b->target_at[1].seconds, 3);
    EXPECT_EQ(b->target_at[1].mib, 0u);
}

TEST(BalloonSpec, Errors) {
    for (const char* bad : {"stats", "stats=0", "stats=x", "stats=99999", "bogus", "reporting=1", "target-at=5",
                            "target-at=x:1", "target-at=1:x", "target-at=-1:5", "target-after=5", "target-after=x:1", "target-after=1:-2", ",", "stats=1,,reporting"}) {
        auto b = parse_balloon_spec(bad);
        ASSERT_FALSE(b) << bad;
        EXPECT_EQ(b.error().rfind("--balloon ", 0), 0u) << b.error();
    }
}

std::expected<CliResult, std::string> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "vireo");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(int(argv.size()), argv.data());
}

TEST(VirtioCommandLine, DisksAndBalloon) {
    auto r = parse({"run", "--kernel", "k", "--disk", "a.img", "--disk", "b.img,ro", "--balloon", "stats=2",
                    "--virtio-cmdline"});
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(r->guest.machine.disks.size(), 2u);
    EXPECT_EQ(r->guest.machine.disks[1].path, "b.img");
    EXPECT_TRUE(r->guest.machine.disks[1].read_only);
    ASSERT_TRUE(r->guest.machine.balloon);
    EXPECT_EQ(r->guest.machine.balloon->stats_seconds, 2u);
    EXPECT_TRUE(r->guest.machine.virtio_cmdline);
    r = parse({"run", "--kernel", "k", "--balloon"});
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(r->guest.machine.balloon);
    r = parse({"run", "--kernel", "k"});
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->guest.machine.disks.empty());
    EXPECT_FALSE(r->guest.machine.balloon);
}

TEST(VirtioCommandLine, BadValuesAreOneLine) {
    auto r = parse({"run", "--kernel", "k", "--disk", "a.img,queues=0"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("--disk a.img,queues=0"), std::string::npos) << r.error();
    r = parse({"run", "--kernel", "k", "--balloon", "stats=never"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("--balloon"), std::string::npos) << r.error();
    r = parse({"run", "--kernel", "k", "--disk"});
    EXPECT_FALSE(r);
}

}  // namespace
}  // namespace vireo
