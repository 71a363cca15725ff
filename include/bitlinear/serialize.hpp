// bitlinear: forwarding header, kept for one release. The I/O headers live in <bitlinear/io/>: include
// <bitlinear/io/serialize.hpp> instead (docs/changelog.md).
#pragma once

#include "io/serialize.hpp"
