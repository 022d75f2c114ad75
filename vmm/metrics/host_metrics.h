// The host's Prometheus exposition: process, control socket, actions,
// controller, and per guest / per vCPU / per disk figures with `guest`,
// `vcpu` and `disk` labels. Rendered on the control thread per scrape.
#pragma once

#include <string>

namespace vireo {

class HostView;
std::string render_metrics(const HostView& host);

}  // namespace vireo
