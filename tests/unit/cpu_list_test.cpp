// CPU lists and the /proc thread-stat parser pinning and `vcpus` rely on.
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/cpu_list.h"
#include "vmm/thread_stat.h"

namespace vireo {
namespace {

TEST(CpuList, ParseAndFormat) {
    EXPECT_EQ(parse_cpu_list("0-3,6").value(), (CpuList{0, 1, 2, 3, 6}));
    EXPECT_EQ(parse_cpu_list(" 5 , 1 ,1").value(), (CpuList{1, 5}));
    EXPECT_EQ(parse_cpu_list("7").value(), (CpuList{7}));
    EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
    EXPECT_EQ(format_cpu_list({}), "");
    for (const char* badlist : {"", ",", "1,,2", "a", "3-1", "1-", "-1", "1024", "0-5000", "1.5"})
        EXPECT_FALSE(parse_cpu_list(badlist)) << badlist;
}

TEST(CpuList, HostAndThreadAffinity) {
    auto online = online_cpus();
    ASSERT_TRUE(online) << online.error();
    EXPECT_FALSE(online->empty());
    auto mine = thread_affinity(0);
    ASSERT_TRUE(mine) << mine.error();
    EXPECT_FALSE(mine->empty());
    // Setting our own affinity to what it is changes nothing and works.
    EXPECT_TRUE(set_thread_affinity(pid_t(::syscall(SYS_gettid)), *mine));
    EXPECT_FALSE(set_thread_affinity(pid_t(::syscall(SYS_gettid)), {}));  // an empty set is refused by the kernel
}

TEST(ThreadStat, ParsesFieldsAfterTheName) {
    // A name with spaces and a ')' must not shift the fields.
    std::string line = "123 (CPU 0/g) x)) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 30 0";
    auto st = parse_thread_stat(line, 100);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->state, 'R');
    EXPECT_EQ(st->user_ns, 2500000000ull);
    EXPECT_EQ(st->system_ns, 500000000ull);
    EXPECT_EQ(st->processor, 1);
    EXPECT_EQ(st->guest_ns, 300000000ull);
    EXPECT_FALSE(parse_thread_stat("garbage", 100));
    EXPECT_FALSE(parse_thread_stat("1 (x) R 1 2", 100));
    auto me = read_thread_stat(pid_t(::syscall(SYS_gettid)));
    ASSERT_TRUE(me);
    EXPECT_GE(me->processor, 0);
    EXPECT_FALSE(read_thread_stat(0));
}

}  // namespace
}  // namespace vireo
