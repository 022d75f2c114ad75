// libFuzzer target: /etc/passwd and /etc/group are read by vireo while it
// is still root (--user), so their parser must survive any bytes: every
// accepted entry has a valid name and ids, and a lookup never crashes. The
// input is split at the first 0xff byte into a passwd and a group part.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/security/privileges.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view all(reinterpret_cast<const char*>(data), size);
    size_t cut = all.find('\xff');
    std::string_view passwd = all.substr(0, cut);
    std::string_view group = cut == std::string_view::npos ? std::string_view() : all.substr(cut + 1);
    using namespace vireo::security;
    if (auto p = parse_passwd(passwd)) {
        for (const auto& e : *p) {
            if (e.name.empty() || e.name.find(':') != std::string::npos || e.uid == 0xffffffffu || e.gid == 0xffffffffu)
                std::abort();
            auto u = lookup_user(e.name, passwd, group);
            if (u && (u->uid == 0 || u->groups.empty() || u->groups[0] != u->gid)) std::abort();
        }
    } else if (p.error().empty()) {
        std::abort();
    }
    if (auto g = parse_group(group))
        for (const auto& e : *g)
            for (const auto& m : e.members)
                if (m.empty() || m.find(',') != std::string::npos) std::abort();
    (void)lookup_user("nobody", passwd, group);
    return 0;
}
