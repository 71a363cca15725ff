// bitlinear: forwarding header, kept for one release. The I/O headers live in <bitlinear/io/>: include
// <bitlinear/io/hf_config.hpp> instead (docs/changelog.md).
#pragma once

#include "io/hf_config.hpp"
