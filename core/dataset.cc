#include "core/dataset.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/idx.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string JoinPath(const std::string& dir, const char* name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

// The path of `name` inside `dir`: the plain file when present, else the
// ".gz" one; NOT_FOUND naming both when neither exists.
absl::StatusOr<std::string> FindDatasetFile(const std::string& dir, const char* name) {
  const std::string plain = JoinPath(dir, name);
  if (IsRegularFile(plain)) return plain;
  const std::string gzipped = absl::StrCat(plain, ".gz");
  if (IsRegularFile(gzipped)) return gzipped;
  return absl::NotFoundError(
      absl::StrCat("dataset directory ", dir, " has neither ", name, " nor ", name, ".gz"));
}

// Reads one images file and its labels file into a dataset.
absl::StatusOr<Dataset> LoadSet(const std::string& dir, absl::string_view set_name,
                                const char* images_name, const char* labels_name) {
  CONVNET_ASSIGN_OR_RETURN(const std::string images_path, FindDatasetFile(dir, images_name));
  CONVNET_ASSIGN_OR_RETURN(const std::string labels_path, FindDatasetFile(dir, labels_name));
  Dataset set;
  CONVNET_ASSIGN_OR_RETURN(set.images, ReadIdxImages(images_path));
  CONVNET_ASSIGN_OR_RETURN(set.labels, ReadIdxLabels(labels_path));
  const size_t image_count = set.images.size() / kPixels;
  if (image_count != set.labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        set_name, " set: ", images_path, " holds ", image_count, " images but ", labels_path,
        " holds ", set.labels.size(), " labels"));
  }
  return set;
}

}  // namespace

Dataset Dataset::Prefix(size_t n) const {
  n = std::min(n, size());
  Dataset prefix;
  prefix.images.assign(images.begin(), images.begin() + n * kPixels);
  prefix.labels.assign(labels.begin(), labels.begin() + n);
  return prefix;
}

absl::Status CheckMnistDirectory(const std::string& dir) {
  std::vector<std::string> missing;
  std::vector<std::string> unreadable;
  for (const char* name : {kTrainImagesFile, kTrainLabelsFile, kTestImagesFile, kTestLabelsFile}) {
    absl::StatusOr<std::string> path = FindDatasetFile(dir, name);
    if (!path.ok()) {
      missing.push_back(absl::StrCat(name, "[.gz]"));
    } else if (::access(path->c_str(), R_OK) != 0) {
      unreadable.push_back(path->substr(path->find_last_of('/') + 1));
    }
  }
  if (!missing.empty()) return absl::NotFoundError(absl::StrCat("missing ", absl::StrJoin(missing, ", ")));
  if (!unreadable.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("unreadable ", absl::StrJoin(unreadable, ", ")));
  }
  return absl::OkStatus();
}

bool IsMnistDirectory(const std::string& dir) { return CheckMnistDirectory(dir).ok(); }

absl::StatusOr<MnistDirectory> LoadMnistDirectory(const std::string& dir) {
  MnistDirectory mnist;
  CONVNET_ASSIGN_OR_RETURN(mnist.train,
                           LoadSet(dir, "training", kTrainImagesFile, kTrainLabelsFile));
  CONVNET_ASSIGN_OR_RETURN(mnist.test, LoadSet(dir, "test", kTestImagesFile, kTestLabelsFile));
  return mnist;
}

absl::StatusOr<Dataset> MakeDataset(std::vector<uint8_t> images, std::vector<uint8_t> labels) {
  if (images.size() != labels.size() * kPixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a dataset needs ", kPixels, " pixels per label: ", labels.size(), " labels need ",
        labels.size() * kPixels, " pixels, got ", images.size()));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kClasses) {
      return absl::InvalidArgumentError(absl::StrCat("label at index ", i, " is ",
                                                     int{labels[i]}, ", outside 0..",
                                                     kClasses - 1));
    }
  }
  Dataset dataset;
  dataset.images = std::move(images);
  dataset.labels = std::move(labels);
  return dataset;
}

}  // namespace convnet
