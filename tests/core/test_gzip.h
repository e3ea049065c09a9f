// Gzip compression for tests that build .gz inputs in memory.
#ifndef CONVNET_TESTS_CORE_TEST_GZIP_H_
#define CONVNET_TESTS_CORE_TEST_GZIP_H_

#include <zlib.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace convnet::testing {

// `data` compressed into one gzip member, as `gzip` would.
inline std::string Gzip(const std::string& data) {
  z_stream stream;
  std::memset(&stream, 0, sizeof stream);
  EXPECT_EQ(deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&stream, data.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace convnet::testing

#endif  // CONVNET_TESTS_CORE_TEST_GZIP_H_
