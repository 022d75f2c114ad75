// The /etc/passwd and /etc/group parser behind --user, and the drop itself
// (in a child, as root only).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "vmm/security/privileges.h"

namespace vireo::security {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "\n"
    "+nisuser::::::\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash";  // no final newline
constexpr const char* kGroup =
    "root:x:0:\n"
    "kvm:x:107:alice,bob\n"
    "users:x:100:,alice,\n"
    "nogroup:x:65534:\n"
    "alice:x:1000:\n";

TEST(Passwd, ParsesEntries) {
    auto p = parse_passwd(kPasswd);
    ASSERT_TRUE(p.has_value()) << p.error();
    ASSERT_EQ(p->size(), 4u);
    EXPECT_EQ((*p)[2].name, "nobody");
    EXPECT_EQ((*p)[2].uid, 65534u);
    EXPECT_EQ((*p)[2].gid, 65534u);
    EXPECT_EQ((*p)[3].home, "/home/alice");
    auto g = parse_group(kGroup);
    ASSERT_TRUE(g.has_value()) << g.error();
    ASSERT_EQ(g->size(), 5u);
    EXPECT_EQ((*g)[1].members, (std::vector<std::string>{"alice", "bob"}));
    EXPECT_EQ((*g)[2].members, (std::vector<std::string>{"alice"}));
}

TEST(Passwd, RejectsMalformedLines) {
    for (const char* bad : {
             "a:x:1:1:g:/h\n",            // 6 fields
             "a:x:1:1:g:/h:/s:extra\n",   // 8 fields
             ":x:1:1:g:/h:/s\n",          // empty name
             "a b:x:1:1:g:/h:/s\n",       // space in the name
             "a:x:-1:1:g:/h:/s\n",        // sign
             "a:x:+1:1:g:/h:/s\n",
             "a:x:01:1:g:/h:/s\n",        // leading zero
             "a:x:4294967295:1:g:/h:/s\n",  // (uid_t)-1
             "a:x:99999999999:1:g:/h:/s\n",
             "a:x::1:g:/h:/s\n",          // empty uid
             "a:x:1:1x:g:/h:/s\n",
         }) {
        auto p = parse_passwd(bad);
        EXPECT_FALSE(p.has_value()) << bad;
        if (!p) {
            EXPECT_NE(p.error().find("line 1"), std::string::npos) << p.error();
        }
    }
    EXPECT_FALSE(parse_passwd(std::string("a:x:1:1:g:/h:/s\0\n", 17)).has_value());
    EXPECT_FALSE(parse_group("g:x:1\n").has_value());
    EXPECT_FALSE(parse_group("g:x:1:a b\n").has_value());
    EXPECT_FALSE(parse_group("g:x:z:\n").has_value());
    auto second = parse_passwd("a:x:1:1:g:/h:/s\nb:x:1:1\n");
    ASSERT_FALSE(second.has_value());
    EXPECT_NE(second.error().find("line 2"), std::string::npos);
    EXPECT_FALSE(parse_passwd(std::string(5u << 20, '\n')).has_value());  // over 4 MiB
}

TEST(Passwd, LooksUpUserAndGroups) {
    auto u = lookup_user("alice", kPasswd, kGroup);
    ASSERT_TRUE(u.has_value()) << u.error();
    EXPECT_EQ(u->uid, 1000u);
    EXPECT_EQ(u->gid, 1000u);
    EXPECT_EQ(u->groups, (std::vector<gid_t>{1000, 107, 100}));
    auto n = lookup_user("nobody", kPasswd, kGroup);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(n->groups, (std::vector<gid_t>{65534}));
    EXPECT_FALSE(lookup_user("mallory", kPasswd, kGroup).has_value());
    EXPECT_FALSE(lookup_user("root", kPasswd, kGroup).has_value());  // uid 0 drops nothing
    EXPECT_FALSE(lookup_user("nis", kPasswd, kGroup).has_value());
    EXPECT_FALSE(lookup_user("", kPasswd, kGroup).has_value());
    EXPECT_FALSE(lookup_user("a:b", kPasswd, kGroup).has_value());
    EXPECT_FALSE(lookup_user("alice", "alice:x:1000\n", kGroup).has_value());
    // The first entry of a name wins, as with getpwnam.
    auto first = lookup_user("dup", "dup:x:5:5::/:/s\ndup:x:6:6::/:/s\n", "");
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->uid, 5u);
}

TEST(Passwd, ReadsThisSystemsFiles) {
    auto u = resolve_user("nobody");
    ASSERT_TRUE(u.has_value()) << u.error();
    EXPECT_EQ(u->uid, 65534u);
    EXPECT_FALSE(resolve_user("nobody", "/nonexistent/passwd").has_value());
}

std::string status_field(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return {};
}

TEST(Privileges, DropLeavesNoCapabilities) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (drops to nobody in a child)";
    auto u = resolve_user("nobody");
    ASSERT_TRUE(u.has_value());
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (!drop_privileges(*u)) std::_Exit(10);
        if (!privileges_dropped()) std::_Exit(11);
        std::ifstream f("/proc/self/status");
        std::stringstream ss;
        ss << f.rdbuf();
        std::string s = ss.str();
        for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
            if (status_field(s, cap).find_first_not_of("\t 0") != std::string::npos) std::_Exit(12);
        if (status_field(s, "Uid").find("65534\t65534\t65534\t65534") == std::string::npos) std::_Exit(13);
        if (status_field(s, "Gid").find("65534\t65534\t65534\t65534") == std::string::npos) std::_Exit(14);
        if (::setuid(0) == 0) std::_Exit(15);
        std::_Exit(0);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

}  // namespace
}  // namespace vireo::security
