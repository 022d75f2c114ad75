// libFuzzer target: trace files are user input (recorded on another host,
// edited by hand), so read_trace must survive any bytes and either accept
// a trace that writes back to the same snapshots, or refuse it with one
// line that names the line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "agent/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    auto r = vireo::agent::read_trace(in);
    if (!r) {
        if (r.error().empty() || r.error().find('\n') != std::string::npos) std::abort();
        return 0;
    }
    std::stringstream again;
    vireo::agent::write_trace(again, *r);
    auto back = vireo::agent::read_trace(again);
    if (!back || *back != *r) std::abort();
    return 0;
}
