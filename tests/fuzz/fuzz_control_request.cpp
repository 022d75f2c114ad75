// libFuzzer target: control-socket lines are untrusted (any local process
// of vireo's uid, or root, and a buggy script), so parse_request must
// survive any bytes, and whatever it accepts or refuses must produce a
// response line that is valid JSON carrying the request's id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vmm/control/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto r = vireo::control::parse_request(line);
    std::string out = r ? vireo::control::result_line(r->id, {{"ok", true}})
                        : vireo::control::error_line(r.error().id, r.error().error);
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("id")) std::abort();
    if (r) {
        // An accepted request names a known request and has a usable id.
        if (!r->id.is_number_integer() && !r->id.is_string()) std::abort();
        if (r->name.empty()) std::abort();
    } else if (r.error().error.message.empty()) {
        std::abort();
    }
    return 0;
}
