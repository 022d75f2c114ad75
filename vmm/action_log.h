// The decision log: every action apply() saw -- applied, advised or
// refused -- with who asked, why, when, what came of it and the actions
// that would undo it. The `decisions` request lists it, `undo` replays an
// entry's inverse through apply() again.
//
// Bounded (a ring): the oldest records are evicted and the count of
// evicted ones is reported (log line once, metric, `decisions` response).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "vireo/actions.h"

namespace vireo {

struct ActionRecord {
    uint64_t seq = 0;
    int64_t time_ns = 0;  // CLOCK_REALTIME
    Action action;
    Origin origin;
    Outcome outcome = Outcome::Refused;
    std::optional<Error> error;
    // What restores the state from before this action (empty: irreversible,
    // e.g. poweroff, or nothing changed).
    std::vector<Action> undo;
    std::optional<uint64_t> undoes;     // this record undid that one
    std::optional<uint64_t> undone_by;  // ... and that one undid this
};

class ActionLog {
public:
    explicit ActionLog(size_t keep = 4096) : keep_(keep ? keep : 1) {}

    // Assigns seq and returns it.
    uint64_t append(ActionRecord record);
    ActionRecord* find(uint64_t seq);
    const ActionRecord* find(uint64_t seq) const;
    // Newest first, at most `limit`.
    std::vector<const ActionRecord*> recent(size_t limit) const;
    uint64_t next_seq() const { return next_seq_; }
    uint64_t evicted() const { return evicted_; }
    size_t size() const { return records_.size(); }
    size_t capacity() const { return keep_; }

private:
    size_t keep_;
    uint64_t next_seq_ = 1;
    uint64_t evicted_ = 0;
    std::deque<ActionRecord> records_;
};

}  // namespace vireo
