// Strict parsing of user input (the host config file, the agent's traces):
// a key the parser does not know is an error that names the key and every
// key it knows, so a typo is found from the one error line.
#pragma once

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vireo {

// "name, cpus, mem": the choices an error lists.
inline std::string join_names(std::span<const std::string_view> names) {
    std::string list;
    for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    return list;
}

// "unknown key 'cpu' (known: name, cpus, mem)"
inline std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known) {
    return "unknown key '" + std::string(key) + "' (known: " + join_names(known) + ")";
}

// The first key of the JSON object `obj` (an nlohmann::json object) that
// is not in `known`, as its error message; nullopt if there is none.
template <class JsonObject>
std::optional<std::string> first_unknown_key(const JsonObject& obj, std::span<const std::string_view> known) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (std::find(known.begin(), known.end(), it.key()) == known.end()) return unknown_key_message(it.key(), known);
    return std::nullopt;
}

}  // namespace vireo
