#include "standard_services_client.h"

#include "grpcpp/client_context.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/rpc_method.h"
#include "grpcpp/impl/codegen/sync_stream.h"

namespace convnet::server_testing {

grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         wire::HealthCheckResponse* response) {
  const grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC,
                                         channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  wire::HealthCheckRequest request;
  request.set_service(service);
  return grpc::internal::BlockingUnaryCall<wire::HealthCheckRequest, wire::HealthCheckResponse>(
      channel.get(), method, &context, request, response);
}

grpc::Status Reflect(const std::shared_ptr<grpc::Channel>& channel, const wire::ServerReflectionRequest& request,
                     wire::ServerReflectionResponse* response) {
  const grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                         grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<grpc::ClientReaderWriter<wire::ServerReflectionRequest, wire::ServerReflectionResponse>> stream(
      grpc::internal::ClientReaderWriterFactory<wire::ServerReflectionRequest,
                                                wire::ServerReflectionResponse>::Create(channel.get(), method,
                                                                                        &context));
  if (!stream->Write(request)) return stream->Finish();
  stream->WritesDone();
  if (!stream->Read(response)) return stream->Finish();
  wire::ServerReflectionResponse extra;
  while (stream->Read(&extra)) {
  }
  return stream->Finish();
}

}  // namespace convnet::server_testing
