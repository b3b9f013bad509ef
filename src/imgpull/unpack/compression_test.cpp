#include "unpack/compression.h"

#include <gtest/gtest.h>

namespace imgpull::unpack {
namespace {

TEST(UnpackMediaTypeTest, MapsLayerTypes) {
  struct Case {
    const char* media_type;
    Compression expected;
  };
  for (const Case& c : {
           Case{"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
           Case{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
           Case{"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
           Case{"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
           Case{"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
           Case{"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
           Case{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Compression::kGzip},
           Case{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Compression::kZstd},
       }) {
    auto got = compression_for_media_type(c.media_type);
    ASSERT_TRUE(got.ok()) << c.media_type;
    EXPECT_EQ(*got, c.expected) << c.media_type;
  }
}

TEST(UnpackMediaTypeTest, RefusesWhatIsNotALayer) {
  for (const char* type : {"", "application/vnd.oci.image.config.v1+json",
                           "application/vnd.oci.image.layer.v1.tar+bzip2",
                           "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                           "APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR"}) {
    auto got = compression_for_media_type(type);
    ASSERT_FALSE(got.ok()) << type;
    EXPECT_EQ(got.error().code(), ErrorCode::kUnsupported);
  }
}

TEST(UnpackMediaTypeTest, NamesCompressions) {
  EXPECT_EQ(to_string(Compression::kNone), "none");
  EXPECT_EQ(to_string(Compression::kGzip), "gzip");
  EXPECT_EQ(to_string(Compression::kZstd), "zstd");
}

}  // namespace
}  // namespace imgpull::unpack
