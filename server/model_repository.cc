#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/file_util.h"
#include "core/status_macros.h"
#include "server/crash_point.h"
#include "server/log.h"
#include "server/names.h"

namespace convnet::server {
namespace {

namespace fs = std::filesystem;

// The highest version number ever reserved for the model, written (durably)
// before the number is used, so that a crash at any later point, even before
// anything of the version reached the disk, cannot lead to the number being
// handed out again.
constexpr absl::string_view kReservationFileName = ".highest_version";

// A version directory's number: a positive decimal without leading zeros.
bool ParseVersionDirectory(absl::string_view text, int64_t* version) {
  if (text.empty() || text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(text, version) && *version > 0;
}

// The number in a reservation file. FAILED_PRECONDITION naming the file and
// its contents when it cannot be read or holds anything but a number >= 0:
// the highest number ever handed out is then unknown, and guessing it could
// hand one out again.
absl::StatusOr<int64_t> ReadReservation(const fs::path& path) {
  constexpr absl::string_view kConsequence =
      "no version of this model is published until it holds the highest version number ever used";
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return absl::FailedPreconditionError(absl::StrCat(text.status().message(), "; ", kConsequence));
  int64_t reserved = 0;
  if (absl::SimpleAtoi(*text, &reserved) && reserved >= 0) return reserved;
  constexpr size_t kShown = 40;
  const std::string shown = absl::CHexEscape(absl::string_view(*text).substr(0, kShown));
  return absl::FailedPreconditionError(absl::StrCat(path.string(), " is not a version number >= 0 (it holds \"", shown,
                                                    text->size() > kShown ? "..." : "", "\"); ", kConsequence));
}

std::string DescribeVersions(const std::map<int64_t, std::shared_ptr<const Model>>& versions) {
  if (versions.empty()) return "none";
  if (versions.size() <= 10) {
    std::vector<int64_t> numbers;
    for (const auto& [version, model] : versions) numbers.push_back(version);
    return absl::StrJoin(numbers, ", ");
  }
  return absl::StrCat(versions.size(), " versions from ", versions.begin()->first, " to ",
                      versions.rbegin()->first);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(const std::string& model_dir) {
  if (model_dir.empty()) return absl::InvalidArgumentError("model_dir must not be empty");
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return StorageError(ec, "cannot create model directory", model_dir);
  if (!fs::is_directory(model_dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("model_dir ", model_dir, " is not a directory"));
  }
  std::unique_ptr<ModelRepository> repository(new ModelRepository(model_dir));
  CONVNET_RETURN_IF_ERROR(repository->LoadAll());
  return repository;
}

absl::StatusOr<std::vector<std::string>> ModelRepository::ListModelDirectories() const {
  std::error_code ec;
  fs::directory_iterator it(model_dir_, ec);
  if (ec) return StorageError(ec, "cannot list model directory", model_dir_);
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, ".")) continue;  // hidden: not ours to judge
    std::error_code type_ec;
    if (!entry.is_directory(type_ec)) {
      LogWarning(absl::StrCat("model repository: ignoring ", entry.path().string(), ": not a directory"));
      continue;
    }
    if (!IsValidName(name)) {
      LogWarning(absl::StrCat("model repository: ignoring ", entry.path().string(),
                              ": not a valid model name ([a-z0-9][a-z0-9_-]*)"));
      continue;
    }
    names.push_back(name);
  }
  return names;
}

absl::Status ModelRepository::LoadAll() {
  absl::StatusOr<std::vector<std::string>> names = ListModelDirectories();
  if (!names.ok()) return names.status();
  std::vector<std::string> loaded;
  for (const std::string& name : *names) CONVNET_RETURN_IF_ERROR(LoadModelDirectory(name, true, &loaded));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ModelRepository::LoadNewVersions() {
  absl::StatusOr<std::vector<std::string>> names = ListModelDirectories();
  if (!names.ok()) return names.status();
  std::vector<std::string> loaded;
  absl::Status first_error;
  for (const std::string& name : *names) first_error.Update(LoadModelDirectory(name, false, &loaded));
  if (!first_error.ok()) return first_error;
  std::sort(loaded.begin(), loaded.end());
  return loaded;
}

absl::Status ModelRepository::LoadModelDirectory(const std::string& name, bool at_open,
                                                 std::vector<std::string>* loaded_names) {
  const fs::path model_path = fs::path(model_dir_) / name;
  std::error_code ec;
  fs::directory_iterator it(model_path, ec);
  if (ec) return StorageError(ec, "cannot list model directory", model_path);

  std::map<int64_t, std::shared_ptr<const Model>> served;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto model = models_.find(name); model != models_.end()) served = model->second.versions;
  }
  Entry loaded;
  for (const fs::directory_entry& entry : it) {
    const std::string child = entry.path().filename().string();
    if (child == kReservationFileName) {
      absl::StatusOr<int64_t> reserved = ReadReservation(entry.path());
      if (reserved.ok()) {
        loaded.highest_taken = std::max(loaded.highest_taken, *reserved);
      } else {
        loaded.reservation_error = std::string(reserved.status().message());
        LogError(absl::StrCat("model repository: model ", Quote(name), ": ", loaded.reservation_error));
      }
      continue;
    }
    if (absl::StartsWith(child, kTempPrefix)) {
      // A publish in progress, or interrupted by a crash: never renamed into
      // place, never served. Its number ".tmp-<version>-<random>" stays taken.
      int64_t reserved = 0;
      const absl::string_view rest = absl::string_view(child).substr(kTempPrefix.size());
      if (ParseVersionDirectory(rest.substr(0, rest.find('-')), &reserved)) {
        loaded.highest_taken = std::max(loaded.highest_taken, reserved);
      }
      if (!at_open) continue;  // a publish may be writing it now
      std::error_code remove_ec;
      fs::remove_all(entry.path(), remove_ec);
      if (remove_ec) {
        LogWarning(absl::StrCat("model repository: cannot remove the leftover of an interrupted write ",
                                entry.path().string(), ": ", remove_ec.message()));
      } else {
        LogWarning(
            absl::StrCat("model repository: removed the leftover of an interrupted write ", entry.path().string()));
      }
      continue;
    }
    int64_t version = 0;
    if (!ParseVersionDirectory(child, &version)) {
      LogWarning(absl::StrCat("model repository: ignoring ", entry.path().string(),
                              ": not a version directory (a positive number)"));
      continue;
    }
    loaded.highest_taken = std::max(loaded.highest_taken, version);
    if (served.contains(version)) continue;
    const fs::path file = entry.path() / kModelFileName;
    absl::StatusOr<Model> model = ReadModelFile(file.string());
    if (!model.ok()) {
      LogWarning(absl::StrCat("model repository: not serving ", name, "/", version, ": ",
                              model.status().ToString()));
      continue;
    }
    loaded.versions.emplace(version, std::make_shared<const Model>(*std::move(model)));
  }
  if (!loaded.versions.empty()) {
    const Model& latest = *loaded.versions.rbegin()->second;
    LogInfo(absl::StrCat("model repository: loaded model ", Quote(name), " versions ",
                         DescribeVersions(loaded.versions), " (latest ", loaded.versions.rbegin()->first,
                         ", K=", latest.parameters.k(), ")"));
  }
  absl::MutexLock lock(&mu_);
  Entry& entry = models_[name];
  entry.highest_taken = std::max(entry.highest_taken, loaded.highest_taken);
  // As the file reads now: a rescan after the file was fixed lifts the block.
  entry.reservation_error = loaded.reservation_error;
  for (auto& [version, model] : loaded.versions) {
    // A publish may have made the same version visible meanwhile: keep its.
    if (entry.versions.emplace(version, std::move(model)).second) {
      loaded_names->push_back(absl::StrCat(name, "/", version));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ServedVersion> ModelRepository::Get(absl::string_view name, int64_t version) const {
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", name));
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version must be >= 0 (0 = latest), got ", version));
  }
  absl::ReaderMutexLock lock(&mu_);
  auto model = models_.find(name);
  if (model == models_.end() || model->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model ", Quote(name), " not found"));
  }
  const auto& versions = model->second.versions;
  auto found = version == 0 ? std::prev(versions.end()) : versions.find(version);
  if (found == versions.end()) {
    return absl::NotFoundError(absl::StrCat("model ", Quote(name), " has no version ", version,
                                            " (versions: ", DescribeVersions(versions), ")"));
  }
  return ServedVersion{std::string(name), found->first, found->second};
}

absl::StatusOr<ServedVersion> ModelRepository::Publish(absl::string_view name, Model model) {
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", name));
  const absl::Span<const float> flat = model.parameters.flat();
  if (const std::optional<size_t> i = FindNonFinite(flat)) {
    return absl::FailedPreconditionError(absl::StrCat("model ", Quote(name), ": refusing to publish parameters that are not finite (parameter ", *i, " is ", flat[*i], ")"));
  }
  const fs::path model_path = fs::path(model_dir_) / std::string(name);
  std::error_code ec;
  int64_t version = 0;
  {
    // The number is on disk before anything uses it; reservations are written
    // one at a time so that the file only ever grows.
    absl::MutexLock reserve_lock(&reserve_mu_);
    {
      absl::MutexLock lock(&mu_);
      Entry& entry = models_[std::string(name)];
      if (!entry.reservation_error.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("model ", Quote(name), " cannot number a new version: ", entry.reservation_error));
      }
      if (entry.highest_taken == std::numeric_limits<int64_t>::max()) {
        return absl::FailedPreconditionError(absl::StrCat("model ", Quote(name), " has no version numbers left (",
                                                          kReservationFileName, " is ", entry.highest_taken, ")"));
      }
      version = ++entry.highest_taken;
    }
    if (fs::create_directory(model_path, ec)) {
      CONVNET_RETURN_IF_ERROR(FsyncDirectory(model_dir_));
    } else if (ec) {
      return StorageError(ec, "cannot create model directory", model_path);
    }
    CONVNET_RETURN_IF_ERROR(
        WriteFileAtomically(model_path / std::string(kReservationFileName), absl::StrCat(version, "\n"),
                            [] { CrashPoint(kCrashAfterTempWrite); }));
  }
  CrashPoint("repository.after_reserve");

  absl::BitGen random;
  const fs::path temp = model_path / absl::StrFormat("%s%d-%016x", kTempPrefix, version,
                                                     absl::Uniform<uint64_t>(random));
  const fs::path final_path = model_path / absl::StrCat(version);
  if (!fs::create_directory(temp, ec)) {
    if (!ec) ec = std::make_error_code(std::errc::file_exists);
    return StorageError(ec, "cannot create temporary version directory", temp);
  }
  model.metadata.created_unix_ms = absl::ToUnixMillis(absl::Now());
  absl::Status written = WriteModelFile((temp / kModelFileName).string(), model);
  if (written.ok()) {
    CrashPoint("repository.after_model_write");
    fs::rename(temp, final_path, ec);
    if (ec) written = StorageError(ec, "cannot rename version directory into place", final_path);
  }
  if (!written.ok()) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    return written;
  }
  CrashPoint("repository.after_rename");
  CONVNET_RETURN_IF_ERROR(FsyncDirectory(model_path));

  ServedVersion served{std::string(name), version, std::make_shared<const Model>(std::move(model))};
  {
    absl::MutexLock lock(&mu_);
    models_[std::string(name)].versions.emplace(version, served.model);
  }
  LogInfo(absl::StrCat("model repository: published ", Quote(name), " version ", version, " (",
                       final_path.string(), ")"));
  return served;
}

ModelVersions ModelRepository::Versions(const std::string& name, const Entry& entry) {
  ModelVersions result;
  result.model_name = name;
  result.versions.reserve(entry.versions.size());
  for (const auto& [version, model] : entry.versions) {
    result.versions.push_back(ServedVersion{name, version, model});
  }
  return result;
}

std::vector<ModelVersions> ModelRepository::List() const {
  std::vector<ModelVersions> result;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, entry] : models_) {
    if (!entry.versions.empty()) result.push_back(Versions(name, entry));
  }
  return result;
}

absl::StatusOr<ModelVersions> ModelRepository::GetModel(absl::string_view name) const {
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", name));
  absl::ReaderMutexLock lock(&mu_);
  auto model = models_.find(name);
  if (model == models_.end() || model->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model ", Quote(name), " not found"));
  }
  return Versions(model->first, model->second);
}

}  // namespace convnet::server
