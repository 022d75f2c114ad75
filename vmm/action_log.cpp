#include "vmm/action_log.h"

#include "vmm/log.h"

namespace vireo {

uint64_t ActionLog::append(ActionRecord record) {
    record.seq = next_seq_++;
    records_.push_back(std::move(record));
    while (records_.size() > keep_) {
        records_.pop_front();
        if (evicted_++ == 0)
            log_warn("decision log: more than {} actions; the oldest are evicted from now on (counted in "
                     "vireo_decisions_evicted_total)",
                     keep_);
    }
    return records_.back().seq;
}

ActionRecord* ActionLog::find(uint64_t seq) {
    if (records_.empty() || seq < records_.front().seq || seq > records_.back().seq) return nullptr;
    return &records_[seq - records_.front().seq];  // seqs are contiguous in the ring
}

const ActionRecord* ActionLog::find(uint64_t seq) const { return const_cast<ActionLog*>(this)->find(seq); }

std::vector<const ActionRecord*> ActionLog::recent(size_t limit) const {
    std::vector<const ActionRecord*> out;
    for (auto it = records_.rbegin(); it != records_.rend() && out.size() < limit; ++it) out.push_back(&*it);
    return out;
}

}  // namespace vireo
