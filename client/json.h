// JSON output of convnet_client (--json): every response message is printed
// whole with protobuf's json_util (ProtoToJson); JsonWriter writes only the
// client's own summaries, which are no proto message (predict's per-image
// results with their sources and labels, health, bench).
#ifndef CONVNET_CLIENT_JSON_H_
#define CONVNET_CLIENT_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace convnet::client {

// Writes one JSON value, compact, with commas placed automatically:
//   JsonWriter json;
//   json.BeginObject().Key("class").Int(7).Key("outputs").BeginArray();
//   for (float v : outputs) json.Float(v);
//   json.EndArray().EndObject();
//   puts(json.str().c_str());
// Non-finite numbers are written as null (JSON has no NaN).
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Float(float value);  // shortest text that reads back as the same float
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // A value that is already JSON text (e.g. from ProtoToJson).
  JsonWriter& Raw(absl::string_view json);

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  template <typename T>
  JsonWriter& Number(T value);

  std::string out_;
  // One entry per open object or array: true until its first element.
  std::vector<bool> first_;
  bool after_key_ = false;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

// The proto3 JSON mapping of `message` with the .proto's field names
// (snake_case) and every field printed, zero values included. As the mapping
// says, 64-bit integers are strings and bytes are base64.
std::string ProtoToJson(const google::protobuf::Message& message);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_JSON_H_
