// bitlinear: GroupedLinear::forward on a ThreadPool. The pool overloads of every layer kind are defined once, in
// parallel_forward.hpp (LayerCore); this header brings them together with grouped_layer.hpp.
#pragma once

#include "grouped_layer.hpp"
#include "parallel_forward.hpp"
