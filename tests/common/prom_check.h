// A checker of the Prometheus text exposition format 0.0.4, for tests:
// promtool is not in Debian 12 proper, so the rules a scraper relies on are
// checked here. Returns the problems found (empty: valid).
//
//  - lines are `# HELP name text`, `# TYPE name type`, `# ...` comments,
//    samples `name{label="value",...} value [timestamp]`, or empty;
//  - metric and label names match [a-zA-Z_:][a-zA-Z0-9_:]* / [a-zA-Z_][a-zA-Z0-9_]*,
//    label values are quoted with \\, \" and \n as the only escapes;
//  - values are Go floats (or +Inf, -Inf, NaN);
//  - TYPE (and HELP) at most once per family and before its samples; the
//    samples of a family are contiguous; no sample (name + labels) twice;
//  - counters are not negative; histograms have, per label set, `le`
//    buckets with increasing bounds and non-decreasing counts, a +Inf
//    bucket equal to _count, and a _sum.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vireo::test {

struct PromSample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
};

inline bool prom_name_ok(std::string_view n, bool label) {
    if (n.empty()) return false;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (i > 0 && digit))) return false;
    }
    return true;
}

inline bool prom_value(std::string_view t, double& out) {
    if (t == "+Inf" || t == "Inf") return out = INFINITY, true;
    if (t == "-Inf") return out = -INFINITY, true;
    if (t == "NaN") return out = NAN, true;
    if (t.empty()) return false;
    std::string s(t);
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
}

// Parses one sample line; false (and `why`) if malformed.
inline bool prom_parse_sample(std::string_view line, PromSample& s, std::string& why) {
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (!prom_name_ok(s.name, false)) return why = "bad metric name '" + s.name + "'", false;
    if (i < line.size() && line[i] == '{') {
        ++i;
        for (;;) {
            if (i < line.size() && line[i] == '}') {
                ++i;
                break;
            }
            size_t eq = line.find('=', i);
            if (eq == std::string_view::npos) return why = "label without '='", false;
            std::string lname(line.substr(i, eq - i));
            if (!prom_name_ok(lname, true)) return why = "bad label name '" + lname + "'", false;
            i = eq + 1;
            if (i >= line.size() || line[i] != '"') return why = "label value not quoted", false;
            ++i;
            std::string v;
            bool closed = false;
            while (i < line.size()) {
                char c = line[i++];
                if (c == '\\') {
                    if (i >= line.size()) return why = "dangling escape", false;
                    char e = line[i++];
                    if (e == 'n') v += '\n';
                    else if (e == '\\' || e == '"') v += e;
                    else return why = std::string("bad escape \\") + e, false;
                } else if (c == '"') {
                    closed = true;
                    break;
                } else if (c == '\n') {
                    return why = "raw newline in a label value", false;
                } else {
                    v += c;
                }
            }
            if (!closed) return why = "unterminated label value", false;
            for (const auto& [k, _] : s.labels)
                if (k == lname) return why = "label '" + lname + "' twice", false;
            s.labels.emplace_back(lname, v);
            if (i < line.size() && line[i] == ',') ++i;
            else if (i < line.size() && line[i] == '}') continue;
            else return why = "expected ',' or '}' after a label", false;
        }
    }
    if (i >= line.size() || line[i] != ' ') return why = "no value", false;
    std::string_view rest = line.substr(i + 1);
    size_t sp = rest.find(' ');
    std::string_view value = rest.substr(0, sp);
    if (!prom_value(value, s.value)) return why = "bad value '" + std::string(value) + "'", false;
    if (sp != std::string_view::npos) {
        std::string_view ts = rest.substr(sp + 1);
        double tsv;
        if (!prom_value(ts, tsv) || ts.find_first_not_of("-0123456789") != std::string_view::npos)
            return why = "bad timestamp", false;
    }
    return true;
}

inline std::vector<std::string> check_prometheus_text(std::string_view text, std::vector<PromSample>* out = nullptr) {
    std::vector<std::string> problems;
    std::map<std::string, std::string> types;  // family -> type
    std::set<std::string> helped, finished, seen, has_samples;
    std::string current;  // family whose samples we are in
    struct Hist {
        std::vector<std::pair<double, double>> buckets;  // (le, count) in order
        bool has_sum = false, has_count = false;
        double count = 0;
    };
    std::map<std::string, Hist> hists;  // family + labels without le
    auto family_of = [&](const std::string& name) {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            std::string_view n(name), s(suffix);
            if (n.size() > s.size() && n.substr(n.size() - s.size()) == s) {
                std::string base(n.substr(0, n.size() - s.size()));
                if (types.count(base) && types[base] == "histogram") return base;
            }
        }
        return name;
    };
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            problems.push_back("the text does not end with a newline");
            nl = text.size();
        }
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++lineno;
        auto bad = [&](const std::string& why) { problems.push_back("line " + std::to_string(lineno) + ": " + why); };
        if (line.empty()) continue;
        if (line[0] == '#') {
            if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
                bool is_type = line[2] == 'T';
                std::string_view rest = line.substr(7);
                size_t sp = rest.find(' ');
                std::string name(rest.substr(0, sp));
                if (!prom_name_ok(name, false)) bad("bad metric name in HELP/TYPE");
                if (has_samples.count(name))
                    bad("HELP/TYPE of " + name + " after its samples");
                if (is_type) {
                    std::string type(sp == std::string_view::npos ? "" : rest.substr(sp + 1));
                    if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
                        bad("unknown type '" + type + "'");
                    if (types.count(name)) bad("second TYPE for " + name);
                    types[name] = type;
                } else {
                    if (helped.count(name)) bad("second HELP for " + name);
                    helped.insert(name);
                }
                if (current != name && !current.empty()) finished.insert(current);
                current = name;
            }
            continue;
        }
        PromSample s;
        std::string why;
        if (!prom_parse_sample(line, s, why)) {
            bad(why);
            continue;
        }
        std::string fam = family_of(s.name);
        if (fam != current) {
            if (finished.count(fam)) bad("samples of " + fam + " are not together");
            if (!current.empty()) finished.insert(current);
            current = fam;
        }
        has_samples.insert(fam);
        std::string key = s.name + "{";
        std::string hist_key = fam + "{";
        for (const auto& [k, v] : s.labels) {
            key += k + "=" + v + ",";
            if (k != "le") hist_key += k + "=" + v + ",";
        }
        if (!seen.insert(key).second) bad("sample " + key + "} twice");
        std::string type = types.count(fam) ? types[fam] : "untyped";
        if (type == "counter" && s.value < 0) bad("negative counter " + s.name);
        if (type == "histogram") {
            Hist& h = hists[hist_key];
            if (s.name == fam + "_bucket") {
                std::string le;
                for (const auto& [k, v] : s.labels)
                    if (k == "le") le = v;
                double bound;
                if (le.empty() || !prom_value(le, bound)) {
                    bad("bucket without a valid le");
                    continue;
                }
                if (!h.buckets.empty() && !(bound > h.buckets.back().first)) bad("le not increasing in " + hist_key);
                if (!h.buckets.empty() && s.value < h.buckets.back().second) bad("bucket counts decrease in " + hist_key);
                h.buckets.emplace_back(bound, s.value);
            } else if (s.name == fam + "_sum") {
                h.has_sum = true;
            } else if (s.name == fam + "_count") {
                h.has_count = true;
                h.count = s.value;
            } else {
                bad("sample " + s.name + " in histogram " + fam);
            }
        }
        if (out) out->push_back(std::move(s));
    }
    for (const auto& [key, h] : hists) {
        if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) problems.push_back(key + "}: no +Inf bucket");
        if (!h.has_sum) problems.push_back(key + "}: no _sum");
        if (!h.has_count) problems.push_back(key + "}: no _count");
        if (!h.buckets.empty() && h.has_count && h.buckets.back().second != h.count)
            problems.push_back(key + "}: +Inf bucket differs from _count");
    }
    return problems;
}

}  // namespace vireo::test
