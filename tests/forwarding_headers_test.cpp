// The I/O headers moved to <bitlinear/io/>; the old paths forward there for one release. This file includes
// them by their old names and uses one name from each, so a forwarding header that stops forwarding fails here.
#include <gtest/gtest.h>

#include <bitlinear/checkpoint.hpp>
#include <bitlinear/hf_config.hpp>
#include <bitlinear/hf_import.hpp>
#include <bitlinear/hf_import_compact.hpp>
#include <bitlinear/mapped_file.hpp>
#include <bitlinear/safetensors.hpp>
#include <bitlinear/serialize.hpp>

#include <type_traits>

TEST(ForwardingHeaders, OldIoPathsStillDeclareTheIoApi) {
  EXPECT_TRUE(std::is_class<bitlinear::SafetensorsFile>::value);
  EXPECT_TRUE(std::is_class<bitlinear::HfCheckpoint>::value);
  EXPECT_TRUE(std::is_class<bitlinear::MappedFile>::value);
  EXPECT_TRUE(std::is_class<bitlinear::HfModelConfig>::value);
  EXPECT_TRUE(std::is_class<bitlinear::SavedLayerInfo>::value);
}
