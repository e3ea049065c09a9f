// A test fixture owning a fresh temporary directory, removed after each test.
#ifndef CONVNET_TESTS_CORE_TEMP_DIR_TEST_H_
#define CONVNET_TESTS_CORE_TEMP_DIR_TEST_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace convnet::testing {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "convnet_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `bytes` to dir_/name and returns the path.
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::string dir_;
};

}  // namespace convnet::testing

#endif  // CONVNET_TESTS_CORE_TEMP_DIR_TEST_H_
