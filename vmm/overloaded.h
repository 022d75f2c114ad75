// std::visit over a variant with one lambda per alternative:
//   std::visit(overloaded{[](const A&) {...}, [](const B&) {...}}, v);
#pragma once

namespace vireo {

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace vireo
